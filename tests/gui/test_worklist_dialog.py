"""The worklist dialog against a real dcmtk wlmscpfs on loopback."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QDate, Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from eyer_desktop.core.net.association import DicomEndpoint
from eyer_desktop.core.net.worklist import WorklistItem, WorklistQuery, query_worklist
from eyer_desktop.core.server_settings import (
    DicomTimeouts,
    DicomWorklistSettings,
)
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.workers import Pools
from eyer_desktop.gui.worklist.dialog import WorklistDialog
from eyer_desktop.gui.worklist.model import Column, Role, WorklistModel
from tests.helpers.dcmtk import (
    DcmtkServer,
    WorklistEntry,
    free_port,
    run_wlmscpfs,
    write_worklist_file,
)

DAY = dt.date(2027, 3, 9)
DAY_TEXT = f"{DAY:%Y%m%d}"
ENTRIES = {
    "conceicao": WorklistEntry(
        "CONCEIÇÃO^ANA^LÚCIA",
        patient_id="52998224725",
        accession_number="ACC1",
        scheduled_date=DAY_TEXT,
    ),
    "goncalves": WorklistEntry(
        "GONÇALVES^JOÃO",
        patient_id="11144477735",
        accession_number="ACC2",
        scheduled_date=DAY_TEXT,
        scheduled_time="101500",
        sex="M",
    ),
    "silva": WorklistEntry(
        "SILVA^PEDRO",
        patient_id="70233368900",
        accession_number="ACC3",
        scheduled_date=DAY_TEXT,
        scheduled_time="080000",
        sex="M",
    ),
}


@pytest.fixture
def wlmscpfs(tmp_path: Path) -> Iterator[DcmtkServer]:
    data_root = tmp_path / "worklists"
    for name, entry in ENTRIES.items():
        write_worklist_file(data_root / "WLMSCP", name, entry)
    other_day = WorklistEntry("OTHER^DAY", scheduled_date="20270310")
    write_worklist_file(data_root / "WLMSCP", "other", other_day)
    with run_wlmscpfs(data_root) as server:
        yield server


def add_worklist_server(workspace: Workspace, port: int, name: str = "RIS") -> str:
    settings = DicomWorklistSettings(
        called_ae="WLMSCP",
        host="127.0.0.1",
        port=port,
        modality="OP",
        timeouts=DicomTimeouts(connect=2.0, acse=5.0, dimse=5.0, network=5.0),
    )
    server = workspace.servers.add(name, ServerAction.MIRROR, settings)
    workspace.save_servers()
    return server.key


def shown_patients(dialog: WorklistDialog) -> list[str]:
    proxy = dialog.proxy
    return [proxy.index(row, Column.PATIENT).data() for row in range(proxy.rowCount())]


def run_query(qtbot: QtBot, dialog: WorklistDialog) -> None:
    qtbot.mouseClick(dialog.query_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(dialog.query_button.isEnabled, timeout=15_000)


@pytest.mark.integration
def test_query_lists_the_day(
    qtbot: QtBot, workspace: Workspace, pools: Pools, wlmscpfs: DcmtkServer
) -> None:
    add_worklist_server(workspace, wlmscpfs.port)
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)
    dialog.date_edit.setDate(QDate(DAY.year, DAY.month, DAY.day))

    run_query(qtbot, dialog)

    assert shown_patients(dialog) == [
        "PEDRO SILVA",
        "ANA LÚCIA CONCEIÇÃO",
        "JOÃO GONÇALVES",
    ]
    assert dialog.status_label.text() == "Scheduled patients: 3"
    first = dialog.proxy.index(0, Column.SCHEDULED).data()
    assert first == "2027-03-09 08:00"


@pytest.mark.integration
def test_any_date_lists_every_entry(
    qtbot: QtBot, workspace: Workspace, pools: Pools, wlmscpfs: DcmtkServer
) -> None:
    add_worklist_server(workspace, wlmscpfs.port)
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)
    dialog.any_date_check.setChecked(True)

    run_query(qtbot, dialog)

    assert len(shown_patients(dialog)) == 4
    assert not dialog.date_edit.isEnabled()


@pytest.mark.integration
def test_name_filter_ignores_case_and_accents(
    qtbot: QtBot, workspace: Workspace, pools: Pools, wlmscpfs: DcmtkServer
) -> None:
    add_worklist_server(workspace, wlmscpfs.port)
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)
    dialog.date_edit.setDate(QDate(DAY.year, DAY.month, DAY.day))
    run_query(qtbot, dialog)

    qtbot.keyClicks(dialog.name_edit, "goncal")

    assert shown_patients(dialog) == ["JOÃO GONÇALVES"]
    assert dialog.status_label.text() == "1 of 3 scheduled patients match the filter."
    dialog.name_edit.clear()
    qtbot.keyClicks(dialog.name_edit, "1114447")
    assert shown_patients(dialog) == ["JOÃO GONÇALVES"]


@pytest.mark.integration
def test_choosing_entry_emits_item(
    qtbot: QtBot, workspace: Workspace, pools: Pools, wlmscpfs: DcmtkServer
) -> None:
    add_worklist_server(workspace, wlmscpfs.port)
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)
    dialog.date_edit.setDate(QDate(DAY.year, DAY.month, DAY.day))
    run_query(qtbot, dialog)
    assert not dialog.import_button.isEnabled()

    dialog.view.selectRow(1)
    with qtbot.waitSignal(dialog.item_chosen, timeout=2_000) as chosen:
        qtbot.mouseClick(dialog.import_button, Qt.MouseButton.LeftButton)

    item = chosen.args[0]
    assert isinstance(item, WorklistItem)
    assert item.patient_id == "52998224725"
    assert item.accession_number == "ACC1"
    assert item.patient_name.given == "ANA"
    assert dialog.result() == WorklistDialog.DialogCode.Accepted


def test_unreachable_server_shows_error(
    qtbot: QtBot, workspace: Workspace, pools: Pools
) -> None:
    add_worklist_server(workspace, free_port())
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)

    run_query(qtbot, dialog)

    text = dialog.status_label.text()
    assert "127.0.0.1" in text
    assert "color: #a4262c" in dialog.status_label.styleSheet()
    assert dialog.model.rowCount() == 0


def test_no_worklist_server_says_how_to_add(
    qtbot: QtBot, workspace: Workspace, pools: Pools
) -> None:
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)

    assert not dialog.query_button.isEnabled()
    assert "Servers page" in dialog.status_label.text()


def test_deactivated_servers_listed_last(
    qtbot: QtBot, workspace: Workspace, pools: Pools
) -> None:
    old = add_worklist_server(workspace, 11112, name="Old RIS")
    workspace.servers.set_action(old, ServerAction.DEACTIVATED)
    current = add_worklist_server(workspace, 11113, name="New RIS")
    dialog = WorklistDialog(workspace, pools)
    qtbot.addWidget(dialog)

    keys = [dialog.server_combo.itemData(i) for i in range(dialog.server_combo.count())]

    assert keys == [current, old]
    assert dialog.server_combo.itemText(1).endswith(" - deactivated")


@pytest.mark.integration
def test_worklist_model_passes_modeltester(
    qtmodeltester: ModelTester, wlmscpfs_items: list[WorklistItem]
) -> None:
    model = WorklistModel()
    qtmodeltester.check(model)

    model.set_items(wlmscpfs_items)

    qtmodeltester.check(model)
    assert model.rowCount() == 2
    rows = {model.index(row, Column.PATIENT).data(): row for row in range(2)}
    ana = rows["ANA LÚCIA CONCEIÇÃO"]
    assert model.index(ana, Column.SEX).data() == "Female"
    assert model.index(ana, Column.BIRTH_DATE).data() == "1958-03-02"
    assert model.index(rows["PEDRO SILVA"], Column.SEX).data() == "Male"
    assert isinstance(model.index(0, 0).data(Role.ITEM), WorklistItem)
    model.set_items([])
    qtmodeltester.check(model)
    assert model.rowCount() == 0


@pytest.fixture
def wlmscpfs_items(tmp_path: Path) -> Iterator[list[WorklistItem]]:
    """Two items read from a real wlmscpfs with the core's query."""
    data_root = tmp_path / "model-worklists"
    for name in ("conceicao", "silva"):
        entry = ENTRIES[name]
        write_worklist_file(data_root / "WLMSCP", name, entry)
    with run_wlmscpfs(data_root) as server:
        endpoint = DicomEndpoint(
            host="127.0.0.1", port=server.port, calling_ae="TEST", called_ae="WLMSCP"
        )
        yield query_worklist(endpoint, WorklistQuery(dates=None))
