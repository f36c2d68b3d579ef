"""The servers table model: roles, qtmodeltester after each change, saving."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import Qt
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomWebSettings,
    DicomWorklistSettings,
)
from eyer_desktop.core.server_test import ServerTestReport, TestStep
from eyer_desktop.core.servers import Server, ServerAction, ServerList
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.servers.model import Column, ServerRole, ServersModel


def storage(port: int = 104) -> DicomStorageSettings:
    return DicomStorageSettings(called_ae="PACS", host="192.168.0.10", port=port)


def saved_servers(workspace: Workspace) -> ServerList:
    return ServerList.load(workspace.paths.servers_file)


@pytest.fixture
def model(workspace: Workspace, qtmodeltester: ModelTester) -> ServersModel:
    created = ServersModel(workspace)
    qtmodeltester.check(created)
    return created


def test_model_starts_with_primary(model: ServersModel) -> None:
    assert model.rowCount() == 1
    assert model.columnCount() == len(Column)
    primary = model.index(0, Column.ACTION).data(ServerRole.SERVER)
    assert isinstance(primary, Server)
    assert primary.is_primary_cloud
    assert model.index(0, Column.ACTION).data() == "Primary"
    assert model.index(0, Column.ADDRESS).data() == "Not configured: set the base URL"


def test_model_only_action_editable(model: ServersModel) -> None:
    for column in Column:
        editable = bool(
            model.flags(model.index(0, column)) & Qt.ItemFlag.ItemIsEditable
        )
        assert editable == (column is Column.ACTION)


def test_model_add_saves_and_checks(
    model: ServersModel, workspace: Workspace, qtmodeltester: ModelTester
) -> None:
    server = model.add_server("Clínica PACS", ServerAction.MIRROR, storage())

    assert server is not None
    assert server.key == "CLI000"
    assert model.rowCount() == 2
    assert model.index(1, Column.KEY).data() == "CLI000"
    assert model.index(1, Column.KIND).data() == "DICOM storage"
    assert model.index(1, Column.ADDRESS).data() == "PACS @ 192.168.0.10:104"
    assert saved_servers(workspace).get("CLI000").name == "Clínica PACS"
    assert workspace.servers.get("CLI000") == server
    qtmodeltester.check(model)


def test_model_every_change_passes_tester(
    model: ServersModel, workspace: Workspace, qtmodeltester: ModelTester
) -> None:
    worklist = DicomWorklistSettings(called_ae="RIS", host="ris.clinic", port=4242)
    web = DicomWebSettings(base_url="https://pacs.example.com/dicom-web")
    added = model.add_server("RIS", "manual", worklist)
    assert added is not None
    qtmodeltester.check(model)
    assert model.add_server("Web", "contingency", web) is not None
    qtmodeltester.check(model)

    assert model.set_action(added.key, ServerAction.DEACTIVATED) is not None
    qtmodeltester.check(model)
    assert model.update_server(added.key, name="RIS 2", settings=worklist) is not None
    qtmodeltester.check(model)
    model.set_testing(added.key, True)
    assert model.index(1, Column.LAST_TEST).data() == "Testing..."
    qtmodeltester.check(model)
    report = ServerTestReport(added.key, [TestStep("Reachable", True, "ok")])
    model.set_test_report(report)
    assert model.index(1, Column.LAST_TEST).data() == "Passed"
    assert model.index(1, Column.LAST_TEST).data(ServerRole.TEST_REPORT) is report
    qtmodeltester.check(model)
    assert model.remove_server(added.key) is not None
    qtmodeltester.check(model)
    model.reload()
    qtmodeltester.check(model)

    saved = saved_servers(workspace)
    assert [server.name for server in saved] == ["EyerCloud", "Web"]
    assert saved.retired_keys == (added.key,)


def test_model_set_data_changes_action(
    model: ServersModel, workspace: Workspace, qtbot: QtBot
) -> None:
    added = model.add_server("PACS", "mirror", storage())
    assert added is not None
    index = model.index(1, Column.ACTION)

    with qtbot.waitSignal(model.dataChanged):
        assert model.setData(index, ServerAction.MANUAL)

    assert index.data(ServerRole.ACTION) == "manual"
    assert saved_servers(workspace).get(added.key).action is ServerAction.MANUAL


def test_model_rejects_primary_action_change(
    model: ServersModel, workspace: Workspace, qtbot: QtBot
) -> None:
    before = workspace.paths.servers_file.exists()
    index = model.index(0, Column.ACTION)

    with qtbot.waitSignal(model.change_failed) as signal:
        assert not model.setData(index, ServerAction.MIRROR)

    assert "primary or deactivated" in signal.args[0]
    assert index.data(ServerRole.ACTION) == "primary"
    assert workspace.servers.primary.action is ServerAction.PRIMARY
    assert workspace.paths.servers_file.exists() == before


def test_model_rejects_removing_primary(
    model: ServersModel, workspace: Workspace, qtbot: QtBot
) -> None:
    with qtbot.waitSignal(model.change_failed) as signal:
        assert model.remove_server(workspace.servers.primary.key) is None

    assert "cannot be removed" in signal.args[0]
    assert model.rowCount() == 1


def test_model_save_failure_keeps_list(
    model: ServersModel, workspace: Workspace, qtbot: QtBot
) -> None:
    added = model.add_server("PACS", "mirror", storage())
    assert added is not None
    saved_text = workspace.paths.servers_file.read_text()
    # A folder where the file's replacement would go makes the write fail.
    workspace.paths.servers_file.unlink()
    workspace.paths.servers_file.mkdir()

    with qtbot.waitSignal(model.change_failed) as signal:
        assert model.set_action(added.key, "manual") is None

    assert str(workspace.paths.servers_file) in signal.args[0]
    assert workspace.servers.get(added.key).action is ServerAction.MIRROR
    assert model.index(1, Column.ACTION).data(ServerRole.ACTION) == "mirror"
    assert json.loads(saved_text)["servers"][1]["action"] == "mirror"
