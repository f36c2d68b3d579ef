"""Test Connection from the Servers page and the editor, against real peers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import shiboken6
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLineEdit
from pytestqt.qtbot import QtBot

from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.server_settings import DicomStorageSettings, ServerKind
from eyer_desktop.core.server_test import ServerTestReport
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.servers.editor import ServerEditor
from eyer_desktop.gui.servers.model import Column, ServerRole
from eyer_desktop.gui.servers.page import ServersPage
from eyer_desktop.gui.workers import Pools
from tests.helpers.dcmtk import (  # noqa: F401 (fixtures)
    DcmtkServer,
    free_port,
    storescp_jpeg_fixture,
    wlmscpfs_server_fixture,
)
from tests.helpers.orthanc import (  # noqa: F401 (fixtures)
    OrthancServer,
    orthanc_fixture,
    orthanc_server_fixture,
)

pytestmark = pytest.mark.integration

TEST_WAIT_MS = 30_000


@pytest.fixture
def page(
    qtbot: QtBot, workspace: Workspace, pools: Pools, secrets: SecretStore
) -> Iterator[ServersPage]:
    created = ServersPage(workspace, pools, secrets)
    qtbot.addWidget(created)
    created.show()
    yield created
    if created.editor is not None and created.editor.isVisible():
        created.editor.reject()


def type_into(qtbot: QtBot, edit: QLineEdit, text: str) -> None:
    edit.clear()
    qtbot.keyClicks(edit, text)


def add_storage(page: ServersPage, port: int) -> str:
    settings = DicomStorageSettings(called_ae="STORESCP", host="127.0.0.1", port=port)
    server = page.model.add_server("Loopback PACS", ServerAction.MIRROR, settings)
    assert server is not None
    return server.key


def step_texts(editor: ServerEditor) -> list[str]:
    return [editor.test_steps.item(i).text() for i in range(editor.test_steps.count())]


def test_page_test_storescp_passes(
    qtbot: QtBot, page: ServersPage, storescp_jpeg: DcmtkServer
) -> None:
    key = add_storage(page, storescp_jpeg.port)
    page.select_key(key)

    with qtbot.waitSignal(page.status_message, timeout=TEST_WAIT_MS) as started:
        page.test_selected()
    assert started.args[0] == f"Testing {key}..."
    assert page.model.index(1, Column.LAST_TEST).data() == "Testing..."

    qtbot.waitUntil(
        lambda: (
            page.model.index(1, Column.LAST_TEST).data(ServerRole.TEST_REPORT)
            is not None
        ),
        timeout=TEST_WAIT_MS,
    )
    report = page.model.index(1, Column.LAST_TEST).data(ServerRole.TEST_REPORT)
    assert isinstance(report, ServerTestReport)
    assert [step.name for step in report.steps] == [
        "Reachable",
        "Association accepted",
        "Ophthalmic Photography",
    ]
    assert report.ok
    assert page.model.index(1, Column.LAST_TEST).data() == "Passed"
    assert "accepted with JPEG Baseline" in (
        page.model.index(1, Column.LAST_TEST).data(Qt.ItemDataRole.ToolTipRole)
    )


def test_page_test_closed_port_fails(qtbot: QtBot, page: ServersPage) -> None:
    key = add_storage(page, free_port())
    page.select_key(key)

    page.test_selected()
    qtbot.waitUntil(
        lambda: page.model.index(1, Column.LAST_TEST).data() not in ("", "Testing..."),
        timeout=TEST_WAIT_MS,
    )

    text = page.model.index(1, Column.LAST_TEST).data()
    assert text.startswith("Reachable: ")
    report = page.model.index(1, Column.LAST_TEST).data(ServerRole.TEST_REPORT)
    assert not report.ok


def test_editor_tests_unsaved_worklist(
    qtbot: QtBot, page: ServersPage, wlmscpfs_server: DcmtkServer, workspace: Workspace
) -> None:
    editor = page.add(ServerKind.DICOM_WORKLIST)
    type_into(qtbot, editor.name_edit, "RIS")
    type_into(qtbot, editor.called_ae_edit, wlmscpfs_server.ae_title)
    type_into(qtbot, editor.host_edit, "127.0.0.1")
    type_into(qtbot, editor.port_edit, str(wlmscpfs_server.port))

    qtbot.mouseClick(editor.test_button, Qt.MouseButton.LeftButton)
    assert not editor.test_button.isEnabled()
    qtbot.waitUntil(editor.test_button.isEnabled, timeout=TEST_WAIT_MS)

    texts = step_texts(editor)
    assert len(texts) == 3
    assert texts[0].startswith("Reachable: 127.0.0.1:")
    assert texts[2] == "Worklist: 0 scheduled today for OP"
    assert editor.test_status.text() == "All checks passed."
    assert page.model.rowCount() == 1
    assert not workspace.paths.servers_file.exists()


def test_editor_tests_typed_password(
    qtbot: QtBot, page: ServersPage, orthanc: OrthancServer
) -> None:
    editor = page.add(ServerKind.DICOMWEB)
    type_into(qtbot, editor.name_edit, "Orthanc")
    type_into(qtbot, editor.url_edit, orthanc.dicomweb_url)
    editor.auth_combo.setCurrentIndex(editor.auth_combo.findData("basic"))
    type_into(qtbot, editor.username_edit, orthanc.username)
    type_into(qtbot, editor.secret_edit, "wrong-password")

    qtbot.mouseClick(editor.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(editor.test_button.isEnabled, timeout=TEST_WAIT_MS)
    failed = step_texts(editor)
    assert failed[-1].startswith("Credentials accepted: ")
    assert "failed" in editor.test_status.text()

    type_into(qtbot, editor.secret_edit, orthanc.password)
    qtbot.mouseClick(editor.test_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(editor.test_button.isEnabled, timeout=TEST_WAIT_MS)
    assert step_texts(editor) == [
        f"Reachable: {orthanc.dicomweb_url}",
        "Credentials accepted: QIDO-RS query answered",
    ]


def test_editor_closed_during_test(
    qtbot: QtBot, page: ServersPage, pools: Pools
) -> None:
    editor = page.add(ServerKind.DICOM_STORAGE)
    type_into(qtbot, editor.name_edit, "Slow")
    type_into(qtbot, editor.called_ae_edit, "PACS")
    type_into(qtbot, editor.host_edit, "127.0.0.1")
    type_into(qtbot, editor.port_edit, str(free_port()))

    editor.start_test()
    assert editor.is_testing()
    editor.reject()
    assert page.editor is None
    qtbot.waitUntil(lambda: not shiboken6.isValid(editor))

    # The test's ending arrives after the dialog is gone and must not fail.
    qtbot.waitUntil(lambda: pools.active_count() == 0, timeout=TEST_WAIT_MS)
