"""The Activity page driven through its buttons, with a real outbox and storescp."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import QItemSelectionModel, Qt
from pytestqt.qtbot import QtBot

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import DeliveryState, Outcome
from eyer_desktop.core.routing import send_now
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.model import Column
from eyer_desktop.gui.activity.page import ActivityPage
from eyer_desktop.gui.delivery.service import SendingService
from eyer_desktop.gui.workers import Pools
from tests.helpers.dcmtk import DcmtkServer, free_port, run_storescp

pytestmark = pytest.mark.integration


@pytest.fixture
def live(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "live", accept_jpeg=True) as server:
        yield server


@pytest.fixture
def archive_key(workspace: Workspace, live: DcmtkServer) -> str:
    settings = DicomStorageSettings(
        called_ae="STORESCP", host="127.0.0.1", port=live.port
    )
    server = workspace.servers.add("Archive", ServerAction.MANUAL, settings)
    workspace.save_servers()
    return server.key


@pytest.fixture
def exams(workspace: Workspace) -> list[Exam]:
    return write_sample_exams(workspace.library, size=64)


@pytest.fixture
def page(
    qtbot: QtBot, workspace: Workspace, pools: Pools, archive_key: str
) -> Iterator[ActivityPage]:
    service = SendingService(workspace, pools)
    created = ActivityPage(workspace, service)
    qtbot.addWidget(created)
    created.show()
    service.start()
    yield created
    service.prepare_to_close()


def states(workspace: Workspace, key: str) -> dict[DeliveryState, int]:
    counts = workspace.outbox.counts().get(key, {})
    return {state: count for state, count in counts.items() if count}


def fail_permanently(workspace: Workspace, key: str, exam: Exam) -> int:
    """Queue an exam and record a permanent failure for each image."""
    outbox = workspace.outbox
    outbox.pause(key)
    count = send_now(outbox, list(workspace.servers), exam, key)
    outbox.resume(key)
    claimed = outbox.claim_due(key, count)
    outcome = Outcome.failed("rejected: no such SOP class", transient=False)
    outbox.record_outcomes({delivery.delivery_id: outcome for delivery in claimed})
    return count


def select_rows(page: ActivityPage, accept: Callable[[int], bool]) -> None:
    selection = page.view.selectionModel()
    selection.clearSelection()
    flags = (
        QItemSelectionModel.SelectionFlag.Select
        | QItemSelectionModel.SelectionFlag.Rows
    )
    for row in range(page.proxy.rowCount()):
        if accept(row):
            selection.select(page.proxy.index(row, 0), flags)


def test_empty_page_explains_queueing(page: ActivityPage, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: page.refresher.loads > 0, timeout=5_000)

    assert page.empty_label.isVisible()
    assert "Send now" in page.empty_label.text()
    assert not page.retry_button.isEnabled()
    assert not page.cancel_button.isEnabled()


def test_retry_button_sends_failed_again(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    archive_key: str,
    exams: list[Exam],
    live: DcmtkServer,
) -> None:
    count = fail_permanently(workspace, archive_key, exams[0])
    page.refresher.request()
    qtbot.waitUntil(lambda: page.proxy.rowCount() == count, timeout=5_000)
    assert page.model.index(0, Column.STATE).data() == "Failed"
    assert (
        page.model.index(0, Column.LAST_ERROR).data() == "rejected: no such SOP class"
    )

    select_rows(page, lambda _row: True)
    assert page.retry_button.isEnabled()
    qtbot.mouseClick(page.retry_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(
        lambda: states(workspace, archive_key) == {DeliveryState.SENT: count},
        timeout=10_000,
    )
    assert len(live.received_files()) == count
    qtbot.waitUntil(
        lambda: page.model.index(0, Column.STATE).data() == "Sent", timeout=5_000
    )


def test_cancel_button_cancels_sending(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    archive_key: str,
    exams: list[Exam],
) -> None:
    outbox = workspace.outbox
    outbox.pause(archive_key)
    count = send_now(outbox, list(workspace.servers), exams[3], archive_key)
    outbox.resume(archive_key)
    claimed = outbox.claim_due(archive_key, count)
    page.refresher.request()
    qtbot.waitUntil(lambda: page.proxy.rowCount() == count, timeout=5_000)

    select_rows(page, lambda _row: True)
    assert page.cancel_button.isEnabled()
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: states(workspace, archive_key) == {DeliveryState.CANCELLED: count},
        timeout=5_000,
    )
    outbox.record_outcomes(
        {delivery.delivery_id: Outcome.sent() for delivery in claimed}
    )

    assert states(workspace, archive_key) == {DeliveryState.CANCELLED: count}


def test_cancel_button_cancels_selection(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    archive_key: str,
    exams: list[Exam],
) -> None:
    count = fail_permanently(workspace, archive_key, exams[4])
    page.refresher.request()
    qtbot.waitUntil(lambda: page.proxy.rowCount() == count, timeout=5_000)

    select_rows(page, lambda row: row < 3)
    qtbot.mouseClick(page.cancel_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(
        lambda: (
            states(workspace, archive_key)
            == {DeliveryState.CANCELLED: 3, DeliveryState.FAILED: count - 3}
        ),
        timeout=5_000,
    )

    def shown_states() -> list[str]:
        model = page.model
        return [
            model.index(row, Column.STATE).data() for row in range(model.rowCount())
        ]

    qtbot.waitUntil(lambda: shown_states().count("Cancelled") == 3, timeout=5_000)
    assert len(shown_states()) == count


def test_retry_all_failed_button(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    archive_key: str,
    exams: list[Exam],
) -> None:
    count = fail_permanently(workspace, archive_key, exams[1])

    qtbot.mouseClick(page.retry_all_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(
        lambda: states(workspace, archive_key) == {DeliveryState.SENT: count},
        timeout=10_000,
    )


def test_pause_and_resume_buttons(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    archive_key: str,
    exams: list[Exam],
) -> None:
    row = page.servers_model.row_of(archive_key)
    assert row is not None
    page.servers_view.selectRow(row)
    assert page.pause_button.isEnabled()
    assert not page.resume_button.isEnabled()

    qtbot.mouseClick(page.pause_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: archive_key in workspace.outbox.paused_servers(), timeout=5_000
    )
    page.sending.send_now([exams[0].exam_id], archive_key)
    qtbot.waitUntil(
        lambda: states(workspace, archive_key) == {DeliveryState.PAUSED: 2},
        timeout=5_000,
    )
    status = page.servers_model.index(page.servers_model.row_of(archive_key), 2)
    qtbot.waitUntil(lambda: status.data().startswith("Paused by you"), timeout=5_000)
    qtbot.waitUntil(page.resume_button.isEnabled, timeout=5_000)

    qtbot.mouseClick(page.resume_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(
        lambda: states(workspace, archive_key) == {DeliveryState.SENT: 2},
        timeout=10_000,
    )


def test_retry_now_sends_waiting_deliveries(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    exams: list[Exam],
    live: DcmtkServer,
) -> None:
    offline = DicomStorageSettings(
        called_ae="STORESCP", host="127.0.0.1", port=free_port()
    )
    server = workspace.servers.add("Moved PACS", ServerAction.MANUAL, offline)
    workspace.save_servers()
    page.refresh_servers()
    page.sending.send_now([exams[0].exam_id], server.key)
    row = page.servers_model.row_of(server.key)
    assert row is not None
    status = page.servers_model.index(row, 2)
    qtbot.waitUntil(lambda: status.data().startswith("Retry at "), timeout=10_000)
    assert "refused" in status.data()

    moved = replace(offline, port=live.port)
    workspace.servers.edit(server.key, settings=moved)
    workspace.save_servers()
    page.servers_view.selectRow(row)
    qtbot.mouseClick(page.retry_server_button, Qt.MouseButton.LeftButton)

    qtbot.waitUntil(
        lambda: states(workspace, server.key) == {DeliveryState.SENT: 2},
        timeout=10_000,
    )
    qtbot.waitUntil(lambda: status.data() == "All sent", timeout=5_000)


def test_filters_narrow_the_table(
    page: ActivityPage,
    qtbot: QtBot,
    workspace: Workspace,
    archive_key: str,
    exams: list[Exam],
) -> None:
    failed = fail_permanently(workspace, archive_key, exams[0])
    workspace.outbox.pause(archive_key)
    paused = send_now(workspace.outbox, list(workspace.servers), exams[1], archive_key)
    page.refresher.request()
    qtbot.waitUntil(lambda: page.proxy.rowCount() == failed + paused, timeout=5_000)

    page.state_filter.setCurrentIndex(page.state_filter.findText("Failed"))
    assert page.proxy.rowCount() == failed
    page.state_filter.setCurrentIndex(page.state_filter.findText("All states"))
    qtbot.keyClicks(page.search_edit, "pereira")
    assert page.proxy.rowCount() == paused
    page.search_edit.clear()
    page.server_filter.setCurrentIndex(page.server_filter.findData("EYE000"))
    assert page.proxy.rowCount() == 0
    assert page.empty_label.text() == "No delivery matches the filters above."
