"""The demo in a window: the main window on a demo profile, with its banner.

The command line (``eyer-desktop demo``) creates the profile and its DICOM
peer with :func:`eyer_desktop.core.demo.create_demo` and calls
:func:`run_demo_window`; the window title and a banner state that it is a demo.
"""

from __future__ import annotations

from eyer_desktop.core.demo import DemoSetup
from eyer_desktop.gui.app import run_gui


def run_demo_window(demo: DemoSetup) -> int:
    """Show the main window on the demo profile until it is closed.

    Returns:
        The exit code of the event loop.
    """
    return run_gui(demo.workspace, demo=demo.banner_text())
