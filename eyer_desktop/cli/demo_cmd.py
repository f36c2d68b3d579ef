"""``eyer-desktop demo``: try the application on a temporary profile.

The demo writes sample exams into a new temporary profile and starts a DICOM
archive and worklist inside the program, on 127.0.0.1 (see
:mod:`eyer_desktop.core.demo`). With a display it opens the window. Without
one (on Linux: neither DISPLAY nor WAYLAND_DISPLAY set, and QT_QPA_PLATFORM not
"offscreen") it runs the same flow on the command line: it sends the
samples to the demo archive, queries the demo worklist and prints the
results. PySide6 is imported only when the window opens.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.logs import configure_logging
from eyer_desktop.core.samples import DEMO_SIZE, MIN_SIZE

if TYPE_CHECKING:
    from eyer_desktop.core.demo import DemoSetup
    from eyer_desktop.core.workspace import Workspace

logger = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="try the application on a temporary profile with sample exams",
        description=(
            "Open the application on a new temporary profile with sample exams, "
            "a built-in DICOM archive and a worklist on 127.0.0.1. Nothing is "
            "sent to any other address, and the profile is deleted at the end. "
            "Without a display, the demo runs on the command line. --profile "
            "does not apply: the demo always uses a new profile."
        ),
    )
    parser.add_argument(
        "--headless",
        action="store_true",
        help="run on the command line even when a display is available",
    )
    parser.add_argument(
        "--keep",
        action="store_true",
        help="keep the temporary profile at the end and print its folder",
    )
    parser.add_argument(
        "--size",
        type=int,
        default=DEMO_SIZE,
        help=f"width and height of the sample images in pixels (default: {DEMO_SIZE})",
    )
    parser.set_defaults(handler=run_demo)


def display_available(
    environ: Mapping[str, str] = os.environ, platform: str = sys.platform
) -> bool:
    """Return whether a window can be shown.

    On Linux that needs an X11 or Wayland display, or Qt's offscreen platform
    (tests and screenshots use it). Windows and macOS always have a display.
    """
    if environ.get("QT_QPA_PLATFORM", "").startswith("offscreen"):
        return True
    if not platform.startswith("linux"):
        return True
    return bool(environ.get("DISPLAY") or environ.get("WAYLAND_DISPLAY"))


def run_demo(context: Workspace, args: argparse.Namespace) -> int:
    from eyer_desktop.core.demo import (
        ARCHIVE_NAME,
        WORKLIST_NAME,
        create_demo,
        run_headless_demo,
    )

    if args.size < MIN_SIZE:
        raise ValidationError(
            "--size",
            args.size,
            f"is smaller than {MIN_SIZE}",
            f"Give {MIN_SIZE} or more",
        )
    headless = args.headless or not display_available()
    if headless and not args.headless:
        print(
            "No display was found (DISPLAY and WAYLAND_DISPLAY are not set), so "
            "the demo runs on the command line. With a display, "
            "'eyer-desktop demo' opens the window instead: the Exams page with "
            "the sample exams, the Activity page sending them to "
            f"{ARCHIVE_NAME}, and File > Import from Worklist."
        )
    print("Writing sample exams and starting the demo archive and worklist...")
    demo = create_demo(size=args.size)
    configure_logging(demo.workspace.paths.log_dir, console_level=_console_level(args))
    print(f"Demo profile: {demo.root}")
    print(f"{ARCHIVE_NAME} and {WORKLIST_NAME} listen on 127.0.0.1:{demo.peer.port}")
    try:
        if headless:
            return 0 if run_headless_demo(demo) else 1
        return _open_window(demo)
    finally:
        demo.close(keep=args.keep)
        if args.keep:
            print(f"The demo profile was kept in {demo.root}")


def _open_window(demo: DemoSetup) -> int:
    try:
        from eyer_desktop.gui.demo import run_demo_window
    except ImportError as error:
        logger.error("Cannot load the desktop application: %s", error)
        print(
            f"error: the window cannot open: {error}. Run 'eyer-desktop demo "
            "--headless' for the command-line demo.",
            file=sys.stderr,
        )
        return 1
    return run_demo_window(demo)


def _console_level(args: argparse.Namespace) -> int:
    if args.debug:
        return logging.DEBUG
    if args.verbose:
        return logging.INFO
    return logging.WARNING
