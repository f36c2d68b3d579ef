"""``eyer-desktop gui``: open the desktop application on the profile.

PySide6 is imported inside the handler, so the rest of the command line runs
where Qt is not installed or no display is available.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from eyer_desktop.core.workspace import Workspace

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "gui",
        help="open the desktop application on the profile",
        description="Open the desktop application on the profile.",
    )
    parser.set_defaults(handler=open_gui)


def open_gui(context: Workspace, args: argparse.Namespace) -> int:
    try:
        from eyer_desktop.gui.app import run_gui
    except ImportError as error:
        logger.error("Cannot load the desktop application: %s", error)
        print(
            f"error: the desktop application cannot start: {error}. Install "
            "PySide6-Essentials and the Qt system libraries (scripts/run-app "
            "installs both), or use the command line.",
            file=sys.stderr,
        )
        return 1
    return run_gui(context)
