"""The crash handler: an unexpected exception shows a dialog, never a silent exit.

:func:`install_crash_handler` replaces ``sys.excepthook`` (exceptions raised in
slots and event handlers reach it) and ``threading.excepthook``. Each
exception is logged with its full traceback, and the user sees a short
apology, the error type and message, and the log file's path, with a button
that copies the details for a support request. The traceback is never shown
in the dialog itself.
"""

from __future__ import annotations

import logging
import platform
import sys
import threading
import traceback
from pathlib import Path
from types import TracebackType

from PySide6 import __version__ as pyside_version
from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QGuiApplication
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDialogButtonBox,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from eyer_desktop import __version__
from eyer_desktop.gui.icons import icon

logger = logging.getLogger(__name__)

ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def format_details(exc_info: ExcInfo) -> str:
    """Return the text copied by "Copy details": versions, error and traceback."""
    exc_type, error, tb = exc_info
    lines = [
        f"Eyer Desktop {__version__}",
        f"Python {platform.python_version()}, PySide6 {pyside_version}, "
        f"{platform.platform()}",
        "",
        f"{exc_type.__name__}: {error}",
        "",
        *traceback.format_exception(exc_type, error, tb),
    ]
    return "\n".join(line.rstrip("\n") for line in lines)


class CrashDialog(QDialog):
    """The dialog shown for an unexpected error."""

    def __init__(
        self,
        exc_info: ExcInfo,
        log_file: Path | None,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.details = format_details(exc_info)
        exc_type, error, _tb = exc_info
        self.setWindowTitle(self.tr("Eyer Desktop: unexpected error"))
        self.setWindowIcon(icon("failed"))
        self.setMinimumWidth(520)

        apology = QLabel(
            self.tr(
                "<b>Sorry, something went wrong inside Eyer Desktop.</b><br>"
                "Deliveries that did not finish stay in the queue and are retried. "
                "If the window behaves strangely, save your work and restart "
                "Eyer Desktop."
            ),
            self,
        )
        apology.setWordWrap(True)

        message = str(error) or self.tr("(no message)")
        self.error_label = QLabel(f"{exc_type.__name__}: {message}", self)
        self.error_label.setObjectName("crashError")
        self.error_label.setWordWrap(True)
        self.error_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )
        self.error_label.setStyleSheet(
            "QLabel#crashError { font-family: monospace; padding: 6px;"
            " background: palette(base); border: 1px solid palette(mid); }"
        )

        if log_file is None:
            log_text = self.tr("No log file could be opened; details are below.")
        else:
            log_text = self.tr("The full report is in the log file:<br>%s") % log_file
        self.log_label = QLabel(log_text, self)
        self.log_label.setWordWrap(True)
        self.log_label.setTextInteractionFlags(
            Qt.TextInteractionFlag.TextSelectableByMouse
        )

        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close, self)
        self.copy_button = QPushButton(icon("copy"), self.tr("Copy Details"), self)
        self.copy_button.setToolTip(
            self.tr("Copy the error and its traceback, for a support request")
        )
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        self.copy_button.clicked.connect(self.copy_details)
        if log_file is not None:
            folder_button = QPushButton(
                icon("folder"), self.tr("Open Log Folder"), self
            )
            buttons.addButton(folder_button, QDialogButtonBox.ButtonRole.ActionRole)
            folder_button.clicked.connect(
                lambda: QDesktopServices.openUrl(
                    QUrl.fromLocalFile(str(log_file.parent))
                )
            )
        buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(apology)
        layout.addWidget(self.error_label)
        layout.addWidget(self.log_label)
        layout.addWidget(buttons)

    def copy_details(self) -> None:
        """Put the error, the traceback and the versions on the clipboard."""
        QGuiApplication.clipboard().setText(self.details)
        self.copy_button.setText(self.tr("Copied"))


class CrashHandler(QObject):
    """Logs unexpected exceptions and shows them in a :class:`CrashDialog`.

    Signals:
        crashed: An unexpected exception was logged; carries the exception.
    """

    crashed = Signal(object)
    _from_thread = Signal(object)

    def __init__(self, log_file: Path | None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.log_file = log_file
        self.dialog: CrashDialog | None = None
        self._previous_hook = sys.excepthook
        self._previous_thread_hook = threading.excepthook
        # Emitted from other threads, so the dialog is built on the GUI thread.
        self._from_thread.connect(self._show)

    def install(self) -> None:
        sys.excepthook = self.handle
        threading.excepthook = self._handle_thread

    def uninstall(self) -> None:
        """Put back the hooks that were there before :meth:`install`."""
        if sys.excepthook == self.handle:
            sys.excepthook = self._previous_hook
        if threading.excepthook == self._handle_thread:
            threading.excepthook = self._previous_thread_hook

    def handle(
        self,
        exc_type: type[BaseException],
        error: BaseException,
        tb: TracebackType | None,
    ) -> None:
        """Log the exception and show the dialog; the ``sys.excepthook`` signature."""
        if issubclass(exc_type, KeyboardInterrupt):
            self._previous_hook(exc_type, error, tb)
            return
        logger.critical("Unexpected error", exc_info=(exc_type, error, tb))
        self._show((exc_type, error, tb))

    def _handle_thread(self, args: threading.ExceptHookArgs) -> None:
        if args.exc_value is None:
            return
        exc_info = (args.exc_type, args.exc_value, args.exc_traceback)
        thread_name = args.thread.name if args.thread is not None else "unknown"
        logger.critical("Unexpected error in thread %s", thread_name, exc_info=exc_info)
        self._from_thread.emit(exc_info)

    def _show(self, exc_info: ExcInfo) -> None:
        self.crashed.emit(exc_info[1])
        if QApplication.instance() is None:
            traceback.print_exception(*exc_info)
            return
        if self.dialog is not None and self.dialog.isVisible():
            # One dialog at a time: a repeating error must not stack windows.
            # Every occurrence is in the log already.
            return
        parent = QApplication.activeWindow()
        self.dialog = CrashDialog(exc_info, self.log_file, parent)
        self.dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        self.dialog.destroyed.connect(self._forget_dialog)
        self.dialog.open()

    def _forget_dialog(self) -> None:
        self.dialog = None


def install_crash_handler(
    log_file: Path | None, parent: QObject | None = None
) -> CrashHandler:
    """Create a :class:`CrashHandler`, install it, and return it."""
    handler = CrashHandler(log_file, parent)
    handler.install()
    return handler
