"""Logging set-up: the console handler follows standard error."""

from __future__ import annotations

import io
import logging
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.logs import LOG_FILE_NAME, configure_logging


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    level = logging.getLogger().level
    yield
    configure_logging(None, console_level=None)
    logging.getLogger().setLevel(level)


def test_console_writes_to_current_stderr(monkeypatch: pytest.MonkeyPatch) -> None:
    configure_logging(None)
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)

    logging.getLogger("eyer_desktop.test").warning("disk nearly full")

    assert "WARNING eyer_desktop.test: disk nearly full" in later.getvalue()


def test_closed_earlier_stderr_is_not_used(monkeypatch: pytest.MonkeyPatch) -> None:
    earlier = io.StringIO()
    monkeypatch.setattr(sys, "stderr", earlier)
    configure_logging(None)
    earlier.close()
    later = io.StringIO()
    monkeypatch.setattr(sys, "stderr", later)

    logging.getLogger("eyer_desktop.test").error("queue stalled")

    assert "queue stalled" in later.getvalue()


def test_file_receives_info_records(tmp_path: Path) -> None:
    log_file = configure_logging(tmp_path, console_level=None)

    logging.getLogger("eyer_desktop.test").info("converted exam 1234")
    for handler in logging.getLogger().handlers:
        handler.flush()

    assert log_file == tmp_path / LOG_FILE_NAME
    assert "converted exam 1234" in log_file.read_text(encoding="utf-8")
