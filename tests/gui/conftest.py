"""Fixtures of the GUI tests: offscreen Qt, a workspace, pools and a keyring.

Every test under tests/gui is marked ``gui``. Qt runs on the offscreen
platform unless QT_QPA_PLATFORM names another one, so the tests need no display.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication

from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.main_window import MainWindow
from eyer_desktop.gui.workers import Pools
from tests.helpers.keyrings import MemoryKeyring, installed_keyring

GUI_TESTS_DIR = Path(__file__).parent


@pytest.fixture(autouse=True)
def no_close_question(monkeypatch: pytest.MonkeyPatch) -> None:
    """Answer "Stop and Close" for any main window closed with workers running.

    pytest-qt closes the windows a test registered before the fixtures tear
    down. A worker still running then (a thumbnail, a drag conversion, a send)
    made the window ask, in a modal box that nobody answers, and the run hung.
    A test that checks the question patches it again itself.
    """

    def stop(_window: MainWindow, _active: int) -> str:
        return "stop"

    monkeypatch.setattr(MainWindow, "_ask_how_to_close", stop)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if GUI_TESTS_DIR in Path(item.path).parents:
            item.add_marker(pytest.mark.gui)


@pytest.fixture
def workspace(tmp_path: Path) -> Iterator[Workspace]:
    """A workspace on a fresh profile folder of the test."""
    opened = Workspace.open(tmp_path / "profile")
    yield opened
    opened.close()


@pytest.fixture
def pools(qapp: QApplication) -> Iterator[Pools]:
    """The worker pools, shut down after the test."""
    created = Pools()
    yield created
    assert created.shutdown(10_000), "workers still running after the test"
    QApplication.processEvents()


@pytest.fixture
def memory_keyring() -> Iterator[MemoryKeyring]:
    """A fake in-memory keyring installed as keyring's backend."""
    with installed_keyring(MemoryKeyring()) as backend:
        yield backend


@pytest.fixture
def secrets(memory_keyring: MemoryKeyring) -> SecretStore:
    """A secret store on the in-memory keyring."""
    return SecretStore(memory_keyring)
