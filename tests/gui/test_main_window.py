"""The main window: pages, menus, remembered state, closing with workers."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QSettings, QTimer
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QApplication, QMessageBox
from pytestqt.qtbot import QtBot

from eyer_desktop.cli import main as cli_main
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.app import EXIT_CONFIG, run_gui
from eyer_desktop.gui.main_window import WINDOW_STATE_FILE, MainWindow
from eyer_desktop.gui.servers.page import ServersPage
from eyer_desktop.gui.settings_dialog import SettingsDialog
from eyer_desktop.gui.workers import Pools, Worker

WAIT_MS = 5000


@pytest.fixture(autouse=True)
def close_waits_for_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Choose "Wait and Close" when closing finds workers still running.

    The question box is modal and would block the test; tests that check the
    question replace this answer on their window.
    """

    def answer_wait(window: MainWindow, active: int) -> str:
        return "wait"

    monkeypatch.setattr(MainWindow, "_ask_how_to_close", answer_wait)


@pytest.fixture
def window(qtbot: QtBot, workspace: Workspace, pools: Pools) -> Iterator[MainWindow]:
    created = MainWindow(workspace, pools)
    qtbot.addWidget(created)
    created.show()
    yield created


def test_window_lists_pages(window: MainWindow) -> None:
    titles = [
        window.page_list.item(row).text() for row in range(window.page_list.count())
    ]

    assert titles[:3] == ["Exams", "Servers", "Activity"]
    assert window.stack.count() == len(window.pages)
    assert isinstance(window.show_page("Servers"), ServersPage)
    assert window.stack.currentWidget() is window.pages[1].widget


def test_window_menus_use_standard_keys(window: MainWindow) -> None:
    assert window.quit_action.shortcut() == QKeySequence(QKeySequence.StandardKey.Quit)
    menus = [action.text() for action in window.menuBar().actions()]
    assert menus == ["&File", "&View", "&Help"]
    assert window.log_folder_action in window.help_menu.actions()


def test_window_state_saved_and_restored(
    qtbot: QtBot, workspace: Workspace, pools: Pools
) -> None:
    first = MainWindow(workspace, pools)
    qtbot.addWidget(first)
    first.show()
    first.show_page("Activity")
    first.close()
    qtbot.waitUntil(lambda: not first.isVisible(), timeout=WAIT_MS)

    state_file = workspace.paths.config_dir / WINDOW_STATE_FILE
    assert state_file.is_file()
    stored = QSettings(str(state_file), QSettings.Format.IniFormat)
    assert stored.value("page", type=int) == 2

    second = MainWindow(workspace, pools)
    qtbot.addWidget(second)
    assert second.page_list.currentRow() == 2


def test_window_opens_settings_dialog(qtbot: QtBot, window: MainWindow) -> None:
    window.settings_action.trigger()

    dialog = window.settings_dialog
    assert isinstance(dialog, SettingsDialog)
    assert dialog.isVisible()
    dialog.reject()


def test_close_waits_for_running_workers(
    qtbot: QtBot,
    window: MainWindow,
    pools: Pools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[int] = []

    def answer_wait(active: int) -> str:
        asked.append(active)
        return "wait"

    monkeypatch.setattr(window, "_ask_how_to_close", answer_wait)
    gate = threading.Event()
    pools.general.start(Worker(gate.wait, 10))

    window.close()
    assert len(asked) == 1
    assert asked[0] >= 1
    assert window.isVisible()
    assert not window.isEnabled()

    gate.set()
    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)


def test_close_stop_cancels_queued_workers(
    qtbot: QtBot,
    window: MainWindow,
    pools: Pools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(window, "_ask_how_to_close", lambda active: "stop")
    gate = threading.Event()
    ran: list[bool] = []
    lane = pools.lane("PAC001")
    lane.start(Worker(gate.wait, 10))
    lane.start(Worker(lambda: ran.append(True)))

    window.close()
    gate.set()

    qtbot.waitUntil(lambda: not window.isVisible(), timeout=WAIT_MS)
    assert ran == []


def test_close_cancelled_keeps_window(
    qtbot: QtBot,
    window: MainWindow,
    pools: Pools,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(window, "_ask_how_to_close", lambda active: None)
    gate = threading.Event()
    pools.general.start(Worker(gate.wait, 10))

    window.close()

    assert window.isVisible()
    assert window.isEnabled()
    gate.set()
    qtbot.waitUntil(lambda: pools.active_count() == 0, timeout=WAIT_MS)
    assert window.isVisible()


def close_top_window_soon(qtbot: QtBot, attempts: int = 250) -> None:
    """Close the main window once run_gui shows it, trying every 20 ms."""

    def close_it(left: int) -> None:
        windows = [
            w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)
        ]
        visible = [w for w in windows if w.isVisible()]
        if not visible and left > 0:
            QTimer.singleShot(20, lambda: close_it(left - 1))
        for shown in visible:
            shown.close()

    QTimer.singleShot(20, lambda: close_it(attempts))


def test_run_gui_shows_window_and_returns(qtbot: QtBot, workspace: Workspace) -> None:
    close_top_window_soon(qtbot)

    assert run_gui(workspace) == 0
    assert (workspace.paths.config_dir / WINDOW_STATE_FILE).is_file()


def test_run_gui_reports_damaged_server_file(
    qtbot: QtBot, workspace: Workspace
) -> None:
    workspace.paths.config_dir.mkdir(parents=True)
    workspace.paths.servers_file.write_text("{ not json")
    messages: list[str] = []

    def answer_box() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            QTimer.singleShot(20, answer_box)
            return
        messages.append(box.text())
        box.accept()
        close_top_window_soon(qtbot)

    QTimer.singleShot(50, answer_box)
    assert run_gui(workspace) == 0

    assert len(messages) == 1
    assert str(workspace.paths.servers_file) in messages[0]
    assert workspace.servers.primary.name == "EyerCloud"


def test_run_gui_unreadable_profile_exits(qtbot: QtBot, workspace: Workspace) -> None:
    # A folder in place of the servers file cannot be read, and it is not
    # moved aside, so the second attempt fails too.
    workspace.paths.servers_file.mkdir(parents=True)

    answered: list[str] = []

    def answer_box() -> None:
        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            answered.append(box.text())
            box.accept()

    timer = QTimer()
    timer.timeout.connect(answer_box)
    timer.start(20)
    try:
        code = run_gui(workspace)
    finally:
        timer.stop()

    assert code == EXIT_CONFIG
    assert len(answered) == 2
    assert str(workspace.paths.servers_file) in answered[0]


def test_cli_gui_command_opens_window(qtbot: QtBot, tmp_path: Path) -> None:
    profile = tmp_path / "cli-profile"
    close_top_window_soon(qtbot)

    assert cli_main(["--profile", str(profile), "gui"]) == 0
    assert (profile / "config" / WINDOW_STATE_FILE).is_file()
