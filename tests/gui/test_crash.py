"""The crash handler: unexpected exceptions are logged and shown, never silent."""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from pytestqt.qtbot import QtBot

from eyer_desktop.gui.crash import (
    CrashDialog,
    CrashHandler,
    ExcInfo,
    install_crash_handler,
)

WAIT_MS = 5000


@pytest.fixture
def handler(tmp_path: Path) -> Iterator[CrashHandler]:
    installed = install_crash_handler(tmp_path / "logs" / "eyer-desktop.log")
    yield installed
    installed.uninstall()
    if installed.dialog is not None:
        installed.dialog.close()


def raise_and_catch() -> ExcInfo:
    try:
        raise KeyError("exam-42")
    except KeyError as error:
        return type(error), error, error.__traceback__


def test_crash_dialog_shows_error_and_log(
    qtbot: QtBot, handler: CrashHandler, caplog: pytest.LogCaptureFixture
) -> None:
    exc_type, error, tb = raise_and_catch()

    with caplog.at_level(logging.CRITICAL, logger="eyer_desktop.gui.crash"):
        handler.handle(exc_type, error, tb)

    dialog = handler.dialog
    assert isinstance(dialog, CrashDialog)
    assert dialog.isVisible()
    assert dialog.error_label.text() == "KeyError: 'exam-42'"
    assert "eyer-desktop.log" in dialog.log_label.text()
    assert "Traceback" not in dialog.error_label.text()
    records = [r for r in caplog.records if r.levelno == logging.CRITICAL]
    assert len(records) == 1
    assert records[0].exc_info is not None
    assert records[0].exc_info[1] is error


def test_crash_copy_details_has_traceback(qtbot: QtBot, handler: CrashHandler) -> None:
    exc_type, error, tb = raise_and_catch()
    handler.handle(exc_type, error, tb)
    dialog = handler.dialog
    assert dialog is not None

    dialog.copy_button.click()

    copied = QGuiApplication.clipboard().text()
    assert "Traceback (most recent call last)" in copied
    assert "KeyError: 'exam-42'" in copied
    assert "Eyer Desktop" in copied
    assert dialog.copy_button.text() == "Copied"


def test_crash_one_dialog_at_a_time(qtbot: QtBot, handler: CrashHandler) -> None:
    exc_type, error, tb = raise_and_catch()
    handler.handle(exc_type, error, tb)
    first = handler.dialog

    with qtbot.waitSignal(handler.crashed):
        handler.handle(exc_type, error, tb)

    assert handler.dialog is first


@pytest.mark.qt_no_exception_capture
def test_crash_from_slot_reaches_dialog(
    qtbot: QtBot, handler: CrashHandler, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_slot() -> None:
        raise RuntimeError("slot failed")

    with qtbot.waitSignal(handler.crashed, timeout=WAIT_MS) as signal:
        QTimer.singleShot(0, broken_slot)

    assert isinstance(signal.args[0], RuntimeError)
    assert handler.dialog is not None
    assert handler.dialog.error_label.text() == "RuntimeError: slot failed"
    assert any(r.levelno == logging.CRITICAL for r in caplog.records)


def test_crash_from_thread_reaches_dialog(qtbot: QtBot, handler: CrashHandler) -> None:
    def broken_thread() -> None:
        raise OSError("disk gone")

    with qtbot.waitSignal(handler.crashed, timeout=WAIT_MS) as signal:
        thread = threading.Thread(target=broken_thread, name="broken")
        thread.start()
        thread.join()

    assert isinstance(signal.args[0], OSError)
    assert handler.dialog is not None
    assert handler.dialog.error_label.text() == "OSError: disk gone"


def test_crash_handler_uninstall_restores_hooks(tmp_path: Path, qtbot: QtBot) -> None:
    previous = sys.excepthook
    previous_thread = threading.excepthook
    installed = install_crash_handler(None)
    assert sys.excepthook == installed.handle

    installed.uninstall()

    assert sys.excepthook is previous
    assert threading.excepthook is previous_thread
