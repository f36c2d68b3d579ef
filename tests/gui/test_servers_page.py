"""The Servers page and its editor, driven through their widgets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QLineEdit, QMessageBox
from pytestqt.modeltest import ModelTester
from pytestqt.qtbot import QtBot

from eyer_desktop.core.outbox import DeliveryItem, DeliveryState, Route
from eyer_desktop.core.secrets import SERVICE_NAME, SecretStore
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomWebSettings,
    PatientNameOrder,
    ServerKind,
    WebAuth,
)
from eyer_desktop.core.servers import ServerAction, ServerList
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.servers.editor import ServerEditor
from eyer_desktop.gui.servers.model import Column
from eyer_desktop.gui.servers.page import ServersPage
from eyer_desktop.gui.workers import Pools
from tests.helpers.keyrings import MemoryKeyring


@pytest.fixture
def page(
    qtbot: QtBot, workspace: Workspace, pools: Pools, secrets: SecretStore
) -> Iterator[ServersPage]:
    created = ServersPage(workspace, pools, secrets)
    qtbot.addWidget(created)
    created.resize(1000, 500)
    created.show()
    yield created
    if created.editor is not None and created.editor.isVisible():
        created.editor.reject()


def saved_servers(workspace: Workspace) -> ServerList:
    return ServerList.load(workspace.paths.servers_file)


def type_into(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def fill_storage(qtbot: QtBot, editor: ServerEditor, port: str = "11112") -> None:
    type_into(qtbot, editor.name_edit, "Clinic PACS")
    type_into(qtbot, editor.called_ae_edit, "PACS")
    type_into(qtbot, editor.host_edit, "192.168.0.10")
    type_into(qtbot, editor.port_edit, port)


def add_storage_server(page: ServersPage, name: str = "Clinic PACS") -> str:
    settings = DicomStorageSettings(called_ae="PACS", host="192.168.0.10", port=104)
    server = page.model.add_server(name, ServerAction.MIRROR, settings)
    assert server is not None
    return server.key


def test_add_dicom_server_through_editor(
    qtbot: QtBot, page: ServersPage, workspace: Workspace
) -> None:
    editor = page.add(ServerKind.DICOM_STORAGE)
    assert editor.isVisible()
    assert not editor.ok_button.isEnabled()
    assert editor.calling_ae_edit.text() == "EYERDESKTOP"

    fill_storage(qtbot, editor)
    assert editor.key_label.text() == "CLI000"
    editor.name_order_combo.setCurrentIndex(1)
    assert editor.ok_button.isEnabled()
    qtbot.mouseClick(editor.ok_button, Qt.MouseButton.LeftButton)

    assert not editor.isVisible()
    assert page.model.rowCount() == 2
    assert page.selected_server() is not None
    server = saved_servers(workspace).get("CLI000")
    assert server.name == "Clinic PACS"
    assert server.action is ServerAction.MIRROR
    assert isinstance(server.settings, DicomStorageSettings)
    assert server.settings.port == 11112
    assert server.settings.patient_name_order is PatientNameOrder.GIVEN_FAMILY


def test_invalid_ae_title_keeps_save_disabled(qtbot: QtBot, page: ServersPage) -> None:
    editor = page.add(ServerKind.DICOM_STORAGE)
    fill_storage(qtbot, editor)
    assert editor.ok_button.isEnabled()

    type_into(qtbot, editor.called_ae_edit, "PACS\\ONE")

    error = editor.dicom_rows.errors["AET"]
    assert error.isVisible()
    assert error.text().startswith("Contains a backslash. Use 1 to 16 printable")
    assert not editor.ok_button.isEnabled()

    type_into(qtbot, editor.called_ae_edit, "PACS1")
    assert not error.isVisible()
    assert editor.ok_button.isEnabled()


def test_missing_tls_file_keeps_save_disabled(
    qtbot: QtBot, page: ServersPage, tmp_path: Path
) -> None:
    editor = page.add(ServerKind.DICOM_STORAGE)
    fill_storage(qtbot, editor)
    editor.tls_group.setChecked(True)
    missing = tmp_path / "missing-ca.pem"

    type_into(qtbot, editor.tls_ca_field.line_edit, str(missing))

    error = editor.tls_rows.errors["CA file"]
    assert error.text().startswith("Does not exist")
    assert not editor.ok_button.isEnabled()

    missing.write_text("-----BEGIN CERTIFICATE-----\n")
    type_into(qtbot, editor.tls_ca_field.line_edit, str(missing))
    assert editor.ok_button.isEnabled()


def test_new_server_lists_missing_fields(qtbot: QtBot, page: ServersPage) -> None:
    editor = page.add(ServerKind.DICOM_WORKLIST)
    assert editor.selected_action() is ServerAction.MANUAL
    assert "receives no exams" in editor.action_hint.text()
    assert editor.dicom_rows.is_visible("Modality")
    assert not editor.dicom_rows.is_visible("SOP class fallback")

    type_into(qtbot, editor.name_edit, "RIS")

    assert "To save, fill in: AET, IP or host name, Port" in editor.general_error.text()
    assert not editor.dicom_rows.errors["AET"].isVisible()


def test_invalid_port_message_under_port(qtbot: QtBot, page: ServersPage) -> None:
    editor = page.add(ServerKind.DICOM_STORAGE)
    fill_storage(qtbot, editor, port="70000")

    assert editor.dicom_rows.errors["Port"].text() == (
        "Is not a port number from 1 to 65535. Give the port the server "
        "listens on, e.g. 104 or 11112"
    )
    assert not editor.ok_button.isEnabled()


def test_primary_cannot_be_removed(qtbot: QtBot, page: ServersPage) -> None:
    page.view.selectRow(0)

    assert not page.remove_button.isEnabled()
    assert "cannot be removed" in page.remove_button.toolTip()
    assert "Deactivated" in page.remove_button.toolTip()
    assert page.remove_selected() is None


def test_remove_asks_and_deletes_secret(
    qtbot: QtBot,
    page: ServersPage,
    workspace: Workspace,
    memory_keyring: MemoryKeyring,
) -> None:
    editor = page.add(ServerKind.DICOMWEB)
    type_into(qtbot, editor.name_edit, "Web PACS")
    type_into(qtbot, editor.url_edit, "https://pacs.example.com/dicom-web")
    editor.auth_combo.setCurrentIndex(editor.auth_combo.findData("basic"))
    type_into(qtbot, editor.username_edit, "clinic")
    assert not editor.ok_button.isEnabled()
    type_into(qtbot, editor.secret_edit, "s3cret")
    qtbot.mouseClick(editor.ok_button, Qt.MouseButton.LeftButton)
    assert memory_keyring.entries == {(SERVICE_NAME, "WEB000"): "s3cret"}
    assert "s3cret" not in workspace.paths.servers_file.read_text()

    page.select_key("WEB000")
    assert page.remove_button.isEnabled()
    box = page.remove_selected()
    assert box is not None
    assert box.isVisible()
    assert "Web PACS (WEB000)" in box.text()
    remove = next(
        button
        for button in box.buttons()
        if box.buttonRole(button) is QMessageBox.ButtonRole.DestructiveRole
    )
    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)

    assert page.model.rowCount() == 1
    assert saved_servers(workspace).find("WEB000") is None
    assert memory_keyring.entries == {}


def test_remove_cancelled_keeps_server(
    qtbot: QtBot, page: ServersPage, workspace: Workspace
) -> None:
    key = add_storage_server(page)
    page.select_key(key)
    box = page.remove_selected()
    assert box is not None

    box.button(QMessageBox.StandardButton.Cancel).click()

    assert page.model.rowCount() == 2
    assert saved_servers(workspace).find(key) is not None


def test_remove_cancels_waiting_deliveries(
    qtbot: QtBot, page: ServersPage, workspace: Workspace
) -> None:
    key = add_storage_server(page)
    workspace.outbox.enqueue(
        [DeliveryItem("exam-1", "image-1", "2.25.1")], {key: Route.MIRROR}
    )
    page.select_key(key)
    box = page.remove_selected()
    assert box is not None
    assert "which will be cancelled: 1" in box.informativeText()
    remove = next(
        button
        for button in box.buttons()
        if box.buttonRole(button) is QMessageBox.ButtonRole.DestructiveRole
    )

    qtbot.mouseClick(remove, Qt.MouseButton.LeftButton)

    states = [d.state for d in workspace.outbox.deliveries(server_key=key)]
    assert states == [DeliveryState.CANCELLED]


def open_action_editor(qtbot: QtBot, page: ServersPage, row: int) -> QComboBox:
    index = page.model.index(row, Column.ACTION)
    cell = page.view.visualRect(index).center()
    qtbot.mouseClick(page.view.viewport(), Qt.MouseButton.LeftButton, pos=cell)
    # The offscreen platform gives the combo box's list window the focus, and
    # the view then closes the editor, so the choice is made before the list
    # opens.
    combo = page.view.findChild(QComboBox, "actionEditor")
    assert combo is not None
    return combo


def choose(combo: QComboBox, action: ServerAction) -> None:
    row = combo.findData(action.value)
    assert row >= 0
    combo.setCurrentIndex(row)
    combo.activated.emit(row)


def test_action_delegate_saves_action(
    qtbot: QtBot,
    page: ServersPage,
    workspace: Workspace,
    qtmodeltester: ModelTester,
) -> None:
    key = add_storage_server(page)
    combo = open_action_editor(qtbot, page, 1)
    assert [combo.itemData(i) for i in range(combo.count())] == [
        "mirror",
        "contingency",
        "manual",
        "deactivated",
    ]
    assert combo.currentData() == "mirror"

    choose(combo, ServerAction.CONTINGENCY)

    qtbot.waitUntil(lambda: page.view.findChild(QComboBox, "actionEditor") is None)
    assert saved_servers(workspace).get(key).action is ServerAction.CONTINGENCY
    assert page.model.index(1, Column.ACTION).data() == "Contingency"
    qtmodeltester.check(page.model)


def test_action_delegate_primary_choices(
    qtbot: QtBot, page: ServersPage, workspace: Workspace
) -> None:
    combo = open_action_editor(qtbot, page, 0)
    assert [combo.itemData(i) for i in range(combo.count())] == [
        "primary",
        "deactivated",
    ]

    choose(combo, ServerAction.DEACTIVATED)

    qtbot.waitUntil(lambda: page.view.findChild(QComboBox, "actionEditor") is None)
    assert saved_servers(workspace).primary.action is ServerAction.DEACTIVATED


def test_edit_primary_base_url(
    qtbot: QtBot, page: ServersPage, workspace: Workspace
) -> None:
    page.view.selectRow(0)
    editor = page.edit_selected()
    assert editor is not None
    assert editor.ok_button.isEnabled()
    assert [
        editor.action_combo.itemData(i) for i in range(editor.action_combo.count())
    ] == ["primary", "deactivated"]

    type_into(qtbot, editor.url_edit, "ftp://cloud")
    assert "Does not start with http://" in editor.web_rows.errors["Base URL"].text()
    assert not editor.ok_button.isEnabled()
    type_into(qtbot, editor.url_edit, "https://cloud.example.com/dicom-web/")
    qtbot.mouseClick(editor.ok_button, Qt.MouseButton.LeftButton)

    primary = saved_servers(workspace).primary
    assert isinstance(primary.settings, DicomWebSettings)
    assert primary.settings.base_url == "https://cloud.example.com/dicom-web"
    assert primary.key == "EYE000"


def test_bearer_token_kept_when_left_empty(
    qtbot: QtBot,
    page: ServersPage,
    workspace: Workspace,
    memory_keyring: MemoryKeyring,
) -> None:
    settings = DicomWebSettings(
        base_url="https://pacs.example.com/dicom-web", auth=WebAuth.BEARER
    )
    server = page.model.add_server("Web", "mirror", settings)
    assert server is not None
    page.secrets.set(server.key, "token-1")
    page.select_key(server.key)

    editor = page.edit_selected()
    assert editor is not None
    assert editor.ok_button.isEnabled()
    assert "Stored in the keyring" in editor.secret_edit.placeholderText()
    assert editor.web_rows.labels["Password or token"].text() == "Token:"
    type_into(qtbot, editor.name_edit, "Web 2")
    qtbot.mouseClick(editor.ok_button, Qt.MouseButton.LeftButton)

    assert saved_servers(workspace).get(server.key).name == "Web 2"
    assert memory_keyring.entries == {(SERVICE_NAME, server.key): "token-1"}


def test_tls_client_key_needs_certificate(
    qtbot: QtBot, page: ServersPage, tmp_path: Path
) -> None:
    key_file = tmp_path / "client.key"
    key_file.write_text("-----BEGIN PRIVATE KEY-----\n")
    editor = page.add(ServerKind.DICOM_STORAGE)
    fill_storage(qtbot, editor)
    editor.tls_group.setChecked(True)
    type_into(qtbot, editor.tls_key_field.line_edit, str(key_file))

    message = editor.tls_rows.errors["Client key"].text()
    assert message.startswith("Is set without a client certificate")
    assert not editor.ok_button.isEnabled()
