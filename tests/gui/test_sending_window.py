"""Sending from the main window: Send now, imports, and worklist imports.

The peers are real: dcmtk's storescp receives, dcmtk's wlmscpfs serves the
worklist.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QModelIndex, Qt
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.samples import write_sample_exams, write_sample_images
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomWorklistSettings,
)
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.model import Column as ActivityColumn
from eyer_desktop.gui.activity.page import ActivityPage
from eyer_desktop.gui.exams.model import Role as ExamRole
from eyer_desktop.gui.exams.status import ChipState
from eyer_desktop.gui.main_window import MainWindow
from eyer_desktop.gui.workers import Pools
from tests.helpers.dcmtk import (
    DcmtkServer,
    WorklistEntry,
    run_storescp,
    run_wlmscpfs,
    write_worklist_file,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def live(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "live", accept_jpeg=True) as server:
        yield server


@pytest.fixture
def exams(workspace: Workspace) -> list[Exam]:
    return write_sample_exams(workspace.library, size=64)


def add_storage(
    workspace: Workspace, name: str, action: ServerAction, port: int
) -> str:
    settings = DicomStorageSettings(called_ae="STORESCP", host="127.0.0.1", port=port)
    key = workspace.servers.add(name, action, settings).key
    workspace.save_servers()
    return key


@pytest.fixture
def window(qtbot: QtBot, workspace: Workspace, pools: Pools) -> Iterator[MainWindow]:
    created = MainWindow(workspace, pools)
    qtbot.addWidget(created)
    created.show()
    yield created
    close_when_idle(qtbot, created, pools)


def close_when_idle(qtbot: QtBot, window: MainWindow, pools: Pools) -> None:
    """Stop sending and wait for the workers, so closing shows no question.

    The question is a modal message box, which would hang the test run. When
    workers are still active after the wait, the window is deleted without
    being closed, and the wait's timeout fails the test.
    """
    window.sending.prepare_to_close()
    try:
        qtbot.waitUntil(lambda: pools.active_count() == 0, timeout=20_000)
    finally:
        if pools.active_count():
            window.deleteLater()
            QApplication.processEvents()


def states(workspace: Workspace, key: str) -> dict[DeliveryState, int]:
    counts = workspace.outbox.counts().get(key, {})
    return {state: count for state, count in counts.items() if count}


def chip_of(window: MainWindow, exam_id: str, key: str) -> ChipState | None:
    model = window.exams_page.model
    row = model.row_of(exam_id)
    if row is None:
        return None
    statuses = model.index(row, 0).data(ExamRole.DELIVERY) or ()
    for status in statuses:
        if status.server_key == key:
            return ChipState(status.state)
    return None


def test_send_now_menu_delivers_and_shows_status(
    qtbot: QtBot,
    workspace: Workspace,
    exams: list[Exam],
    live: DcmtkServer,
    pools: Pools,
) -> None:
    key = add_storage(workspace, "Reading room", ServerAction.MANUAL, live.port)
    window = MainWindow(workspace, pools)
    qtbot.addWidget(window)
    window.show()
    exam = exams[0]
    page = window.exams_page
    qtbot.waitUntil(lambda: page.model.row_of(exam.exam_id) is not None, timeout=10_000)
    assert page.select_exam(exam.exam_id)

    window.send_now_menu.rebuild()
    [action] = [a for a in window.send_now_menu.server_actions() if a.data() == key]
    assert action.isEnabled()
    action.trigger()

    qtbot.waitUntil(lambda: len(live.received_files()) == 2, timeout=20_000)
    qtbot.waitUntil(
        lambda: states(workspace, key) == {DeliveryState.SENT: 2}, timeout=10_000
    )
    qtbot.waitUntil(
        lambda: chip_of(window, exam.exam_id, key) is ChipState.SENT, timeout=15_000
    )
    activity = window.show_page("Activity")
    assert isinstance(activity, ActivityPage)
    qtbot.waitUntil(
        lambda: (
            {
                activity.model.index(row, ActivityColumn.STATE).data()
                for row in range(activity.model.rowCount())
            }
            == {"Sent"}
        ),
        timeout=10_000,
    )
    close_when_idle(qtbot, window, pools)


def test_send_now_menu_explains_unavailable_servers(
    window: MainWindow, workspace: Workspace
) -> None:
    settings = DicomStorageSettings(called_ae="OLD", host="127.0.0.1", port=11112)
    workspace.servers.add("Old PACS", ServerAction.DEACTIVATED, settings)
    workspace.save_servers()

    window.send_now_menu.rebuild()

    texts = {action.text(): action for action in window.send_now_menu.actions()}
    assert "Select one or more exams first" in texts
    old = texts["Old PACS (OLD000): deactivated"]
    assert not old.isEnabled()
    assert "Manual" in old.toolTip()
    cloud = texts["EyerCloud (EYE000): not configured"]
    assert not cloud.isEnabled()


def test_import_queues_for_mirror(
    qtbot: QtBot,
    tmp_path: Path,
    window: MainWindow,
    workspace: Workspace,
    live: DcmtkServer,
) -> None:
    key = add_storage(workspace, "Archive", ServerAction.MIRROR, live.port)
    images = write_sample_images(tmp_path / "to-import", 2, size=64)
    dialog = window.exams_page.open_import_dialog(images)
    # QtTest's key clicks take ASCII only.
    dialog.family_edit.setText("Gonçalves")
    qtbot.keyClicks(dialog.document_number_edit, "52998224725")

    with qtbot.waitSignal(window.exams_page.exams_added, timeout=20_000) as added:
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)

    [exam_id] = added.args[0]
    qtbot.waitUntil(
        lambda: states(workspace, key) == {DeliveryState.SENT: 2}, timeout=20_000
    )
    assert len(live.received_files()) == 2
    assert {d.exam_id for d in workspace.outbox.deliveries(server_key=key)} == {exam_id}


def test_worklist_entry_fills_import_form(
    qtbot: QtBot, tmp_path: Path, window: MainWindow, workspace: Workspace
) -> None:
    today = f"{dt.date.today():%Y%m%d}"
    entry = WorklistEntry(
        "SIMÕES^LUÍZA^HELENA",
        patient_id="39053344705",
        accession_number="ACC42",
        scheduled_date=today,
        birth_date="19830107",
        sex="F",
    )
    write_worklist_file(tmp_path / "worklists" / "WLMSCP", "simoes", entry)
    with run_wlmscpfs(tmp_path / "worklists") as wlmscpfs:
        settings = DicomWorklistSettings(
            called_ae="WLMSCP", host="127.0.0.1", port=wlmscpfs.port, modality="OP"
        )
        workspace.servers.add("RIS", ServerAction.MIRROR, settings)
        workspace.save_servers()

        dialog = window.open_worklist()
        qtbot.waitUntil(lambda: dialog.model.rowCount() == 1, timeout=15_000)
        index: QModelIndex = dialog.proxy.index(0, 0)
        dialog.view.doubleClicked.emit(index)

    importer = window.exams_page.import_dialog
    assert importer is not None
    assert importer.family_edit.text() == "SIMÕES"
    assert importer.given_edit.text() == "LUÍZA"
    assert importer.middle_edit.text() == "HELENA"
    assert importer.document_number_edit.text() == "39053344705"
    assert importer.birth_date_edit.text() == "1983-01-07"
    link = importer.worklist_link
    assert link is not None
    assert link.accession_number == "ACC42"
