"""Start the desktop application on a workspace.

:func:`run_gui` creates the QApplication, installs the crash handler, loads
the profile's settings and servers (a damaged file is reported and moved
aside by the core), shows the main window and runs the event loop. On exit it
stops the worker pools, so no worker outlives the window.
"""

from __future__ import annotations

import logging
import sys

from PySide6.QtCore import QCoreApplication, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication, QMessageBox

from eyer_desktop import __version__
from eyer_desktop.core.errors import ConfigError
from eyer_desktop.core.logs import LOG_FILE_NAME
from eyer_desktop.core.paths import APP_AUTHOR
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.crash import install_crash_handler
from eyer_desktop.gui.icons import icon
from eyer_desktop.gui.main_window import MainWindow
from eyer_desktop.gui.workers import Pools

logger = logging.getLogger(__name__)

APPLICATION_NAME = "Eyer Desktop"

# Exit code when the profile cannot be opened; the command line uses 3 for a
# configuration file that is damaged or cannot be written.
EXIT_CONFIG = 3

# How long closing waits for running workers after asking them to stop.
SHUTDOWN_WAIT_MS = 30_000


def application() -> QApplication:
    """Return the running QApplication, creating and naming it when there is none."""
    existing = QApplication.instance()
    if isinstance(existing, QApplication):
        return existing

    # Fractional scale factors (125 %, 150 %) are used as they are, so text
    # and icons are not rounded to a blurry or oversized whole factor.
    QGuiApplication.setHighDpiScaleFactorRoundingPolicy(
        Qt.HighDpiScaleFactorRoundingPolicy.PassThrough
    )
    app = QApplication(sys.argv[:1])
    QCoreApplication.setOrganizationName(APP_AUTHOR)
    QCoreApplication.setApplicationName(APPLICATION_NAME)
    QCoreApplication.setApplicationVersion(__version__)
    QGuiApplication.setDesktopFileName("eyer-desktop")
    app.setWindowIcon(icon("app"))
    return app


def load_profile(workspace: Workspace) -> bool:
    """Read the settings and the server list, telling the user about damaged files.

    The core moves a damaged file aside and the next read starts from the
    defaults, so after the message the profile opens with default values.

    Returns:
        False when a file still cannot be read after the message.
    """
    for _attempt in range(2):
        try:
            _ = workspace.settings
            _ = workspace.servers
        except ConfigError as error:
            logger.error("Cannot open the profile: %s", error)
            QMessageBox.warning(
                None,
                QCoreApplication.translate("app", "Configuration file problem"),
                str(error),
            )
        else:
            return True
    return False


def run_gui(workspace: Workspace, *, demo: str | None = None) -> int:
    """Show the main window on ``workspace`` and run until it is closed.

    Args:
        workspace: The profile to open.
        demo: Text of a banner saying the profile is a demonstration, or None.

    Returns:
        The exit code: 0 after a normal close, 3 when the profile's
        configuration cannot be read.
    """
    app = application()
    log_file = workspace.paths.log_dir / LOG_FILE_NAME
    crash_handler = install_crash_handler(log_file if log_file.exists() else None)
    try:
        if not load_profile(workspace):
            return EXIT_CONFIG

        pools = Pools()
        window = MainWindow(workspace, pools, demo=demo)
        window.show()
        logger.info("Desktop application started on %s", workspace.paths.config_dir)
        code = app.exec()
        pools.shutdown(SHUTDOWN_WAIT_MS)
        logger.info("Desktop application closed with code %d", code)
        return code
    finally:
        crash_handler.uninstall()
