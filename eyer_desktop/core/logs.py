"""Logging set-up shared by the command line and the desktop application.

Log records go to a rotating file in the profile's log folder, so the clinic's
IT person finds a history there, and optionally to standard error. Patient
names, patient IDs and secrets must never be passed to a logger; modules log
exam ids, server keys and DICOM UIDs instead.
"""

from __future__ import annotations

import logging
import logging.handlers
import sys
from pathlib import Path
from typing import TextIO

LOG_FILE_NAME = "eyer-desktop.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(threadName)s]: %(message)s"
MAX_LOG_BYTES = 2 * 1024 * 1024
LOG_BACKUP_COUNT = 5

# Handlers added by configure_logging, removed when it is called again. Other
# handlers on the root logger (a test runner's, an embedding program's) stay.
_installed_handlers: list[logging.Handler] = []


class _StandardErrorHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes each record to the standard error of the moment it is logged.

    A plain StreamHandler keeps the stream it was made with, which fails once
    that stream is closed, as a test runner does with the stream it captured.
    """

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        # StreamHandler.__init__ assigns the stream; the property ignores it.
        pass


def configure_logging(
    log_dir: Path | None, *, console_level: int | None = logging.WARNING
) -> Path | None:
    """Send log records to a rotating file in ``log_dir`` and to standard error.

    Args:
        log_dir: Folder of the log file; None logs to standard error only.
        console_level: Lowest level shown on standard error; None shows nothing.

    Returns:
        The log file's path, or None when it could not be opened (the reason is
        logged to standard error and the program carries on without a file).
    """
    root = logging.getLogger()
    for handler in _installed_handlers:
        root.removeHandler(handler)
        handler.close()
    _installed_handlers.clear()
    root.setLevel(logging.DEBUG)

    if console_level is not None:
        console = _StandardErrorHandler()
        console.setLevel(console_level)
        console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
        _install(console)

    log_file = None
    if log_dir is not None:
        try:
            log_dir.mkdir(parents=True, exist_ok=True)
            log_file = log_dir / LOG_FILE_NAME
            file_handler = logging.handlers.RotatingFileHandler(
                log_file,
                maxBytes=MAX_LOG_BYTES,
                backupCount=LOG_BACKUP_COUNT,
                encoding="utf-8",
            )
        except OSError as error:
            logging.getLogger(__name__).warning(
                "cannot open the log file in %s: %s", log_dir, error
            )
            log_file = None
        else:
            file_handler.setLevel(logging.INFO)
            file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
            _install(file_handler)

    # pynetdicom logs every PDU at DEBUG and, unless configured otherwise, the
    # identifiers of queries, which carry patient data. Its errors (rejected
    # or aborted associations) reach the user as DeliveryError messages that
    # name the server, so its own copy of each is left out.
    logging.getLogger("pynetdicom").setLevel(logging.CRITICAL)
    return log_file


def _install(handler: logging.Handler) -> None:
    logging.getLogger().addHandler(handler)
    _installed_handlers.append(handler)
