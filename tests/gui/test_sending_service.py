"""The sending service against real dcmtk storescp peers on loopback.

A hung archive is a real storescp stopped with SIGSTOP: the kernel still
completes the TCP connection, but no association response ever comes, as with a
PACS that froze.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from eyer_desktop.core.delivery import ServerPhase, ServerProgress
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.server_settings import DicomStorageSettings, DicomTimeouts
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.model import Column as ActivityColumn
from eyer_desktop.gui.activity.page import ActivityPage
from eyer_desktop.gui.activity.servers_model import Column as ServerColumn
from eyer_desktop.gui.delivery.service import SendingService
from eyer_desktop.gui.workers import Pools
from tests.helpers.dcmtk import DcmtkServer, run_storescp

pytestmark = pytest.mark.integration

HUNG_TIMEOUTS = DicomTimeouts(connect=2.0, acse=6.0, dimse=6.0, network=6.0)


def storage(port: int, timeouts: DicomTimeouts | None = None) -> DicomStorageSettings:
    return DicomStorageSettings(
        called_ae="STORESCP",
        host="127.0.0.1",
        port=port,
        timeouts=timeouts or DicomTimeouts(),
    )


@pytest.fixture
def live(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "live", accept_jpeg=True) as server:
        yield server


@pytest.fixture
def hung(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "hung", accept_jpeg=True) as server:
        os.kill(server.process.pid, signal.SIGSTOP)
        try:
            yield server
        finally:
            os.kill(server.process.pid, signal.SIGCONT)


@pytest.fixture
def exams(workspace: Workspace) -> list[Exam]:
    return write_sample_exams(workspace.library, size=64)


def states(workspace: Workspace, key: str) -> dict[DeliveryState, int]:
    counts = workspace.outbox.counts().get(key, {})
    return {state: count for state, count in counts.items() if count}


@pytest.fixture
def services() -> Iterator[list[SendingService]]:
    """The services a test started; they stop scheduling work at its end."""
    started: list[SendingService] = []
    yield started
    for service in started:
        service.prepare_to_close()


@pytest.fixture
def make_service(
    workspace: Workspace, pools: Pools, services: list[SendingService]
) -> Callable[..., SendingService]:
    def make(batch_size: int = 20) -> SendingService:
        service = SendingService(workspace, pools, batch_size=batch_size)
        services.append(service)
        service.start()
        return service

    return make


def test_send_now_reaches_storescp_and_activity(
    qtbot: QtBot,
    workspace: Workspace,
    pools: Pools,
    exams: list[Exam],
    live: DcmtkServer,
    make_service: Callable[..., SendingService],
) -> None:
    reading = workspace.servers.add(
        "Reading room", ServerAction.MANUAL, storage(live.port)
    )
    workspace.save_servers()
    service = make_service()
    page = ActivityPage(workspace, service)
    qtbot.addWidget(page)
    page.show()
    stereo = exams[3]
    expected = len(stereo.images) + 2

    with qtbot.waitSignal(service.action_done, timeout=10_000) as done:
        service.send_now([stereo.exam_id], reading.key)

    assert done.args == [
        f"Queued for Reading room: {expected} images of 1 selected exams"
    ]
    qtbot.waitUntil(lambda: len(live.received_files()) == expected, timeout=20_000)
    qtbot.waitUntil(
        lambda: states(workspace, reading.key) == {DeliveryState.SENT: expected},
        timeout=10_000,
    )
    model = page.model
    qtbot.waitUntil(
        lambda: (
            [
                model.index(row, ActivityColumn.STATE).data()
                for row in range(model.rowCount())
            ]
            == ["Sent"] * expected
        ),
        timeout=10_000,
    )
    row = page.servers_model.row_of(reading.key)
    assert row is not None
    status = page.servers_model.index(row, ServerColumn.STATUS)
    qtbot.waitUntil(lambda: status.data() == "All sent", timeout=10_000)


def test_progress_reaches_gui_thread(
    qtbot: QtBot,
    workspace: Workspace,
    pools: Pools,
    exams: list[Exam],
    live: DcmtkServer,
    make_service: Callable[..., SendingService],
) -> None:
    archive = workspace.servers.add("Archive", ServerAction.MANUAL, storage(live.port))
    workspace.save_servers()
    service = make_service(batch_size=4)
    seen: list[ServerProgress] = []
    service.progress.connect(seen.append)

    with qtbot.waitSignal(
        service.progress,
        timeout=20_000,
        check_params_cb=lambda p: p.phase is ServerPhase.FINISHED,
    ):
        service.send_now([exams[4].exam_id], archive.key)

    phases = {progress.phase for progress in seen}
    assert phases == {ServerPhase.CONVERTING, ServerPhase.SENDING, ServerPhase.FINISHED}
    sending = [p.done for p in seen if p.phase is ServerPhase.SENDING]
    assert sending == sorted(sending)
    assert seen[-1].summary.sent == 12
    assert all(progress.total == 12 for progress in seen)


def test_hung_server_does_not_hold_up_live_one(
    qtbot: QtBot,
    workspace: Workspace,
    pools: Pools,
    exams: list[Exam],
    live: DcmtkServer,
    hung: DcmtkServer,
    make_service: Callable[..., SendingService],
) -> None:
    servers = workspace.servers
    frozen_settings = storage(hung.port, HUNG_TIMEOUTS)
    frozen = servers.add("Frozen PACS", ServerAction.MIRROR, frozen_settings)
    archive = servers.add("Archive", ServerAction.MIRROR, storage(live.port))
    reading = servers.add("Reading room", ServerAction.MANUAL, storage(live.port))
    workspace.save_servers()
    service = make_service()

    service.queue_exams([exams[0].exam_id])
    qtbot.waitUntil(
        lambda: states(workspace, archive.key) == {DeliveryState.SENT: 2},
        timeout=5_000,
    )
    assert frozen.key in service.running_keys
    service.send_now([exams[1].exam_id], reading.key)
    qtbot.waitUntil(
        lambda: states(workspace, reading.key) == {DeliveryState.SENT: 2},
        timeout=5_000,
    )
    assert frozen.key in service.running_keys

    qtbot.waitUntil(lambda: frozen.key not in service.running_keys, timeout=15_000)
    frozen_states = states(workspace, frozen.key)
    assert frozen_states == {DeliveryState.QUEUED: 2}
    failed = workspace.outbox.deliveries(server_key=frozen.key)
    assert all(delivery.last_error for delivery in failed)
    assert all(delivery.attempts == 1 for delivery in failed)
    assert len(live.received_files()) == 4


def test_closing_stops_after_current_batch(
    qtbot: QtBot,
    workspace: Workspace,
    pools: Pools,
    exams: list[Exam],
    live: DcmtkServer,
    make_service: Callable[..., SendingService],
) -> None:
    archive = workspace.servers.add("Archive", ServerAction.MANUAL, storage(live.port))
    workspace.save_servers()
    service = make_service(batch_size=2)
    first_batch_sent = []

    def close_on_first_send(progress: ServerProgress) -> None:
        if progress.phase is ServerPhase.SENDING and progress.done >= 2:
            if not first_batch_sent:
                service.prepare_to_close()
            first_batch_sent.append(progress.done)

    service.progress.connect(close_on_first_send)
    service.send_now([exams[4].exam_id], archive.key)
    qtbot.waitUntil(lambda: bool(first_batch_sent), timeout=20_000)
    qtbot.waitUntil(lambda: not service.is_busy(), timeout=20_000)

    stopped = states(workspace, archive.key)
    assert DeliveryState.SENDING not in stopped
    assert stopped.get(DeliveryState.QUEUED, 0) > 0
    assert stopped.get(DeliveryState.SENT, 0) % 2 == 0
    assert stopped[DeliveryState.SENT] + stopped[DeliveryState.QUEUED] == 12

    service.cancel_close()
    qtbot.waitUntil(
        lambda: states(workspace, archive.key) == {DeliveryState.SENT: 12},
        timeout=20_000,
    )


def test_retry_and_cancel_actions(
    qtbot: QtBot,
    workspace: Workspace,
    pools: Pools,
    exams: list[Exam],
    live: DcmtkServer,
    make_service: Callable[..., SendingService],
) -> None:
    archive = workspace.servers.add("Archive", ServerAction.MANUAL, storage(live.port))
    workspace.save_servers()
    service = make_service()

    with qtbot.waitSignal(service.action_done, timeout=5_000) as paused:
        service.pause(archive.key)
    assert paused.args == ["Sending to Archive paused"]
    with qtbot.waitSignal(service.action_done, timeout=5_000):
        service.send_now([exams[0].exam_id], archive.key)
    assert states(workspace, archive.key) == {DeliveryState.PAUSED: 2}

    ids = [d.delivery_id for d in workspace.outbox.deliveries(server_key=archive.key)]
    with qtbot.waitSignal(service.action_done, timeout=5_000) as cancelled:
        service.cancel(ids[:1])
    assert cancelled.args == ["Deliveries cancelled: 1"]
    with qtbot.waitSignal(service.action_done, timeout=5_000):
        service.resume(archive.key)
    qtbot.waitUntil(
        lambda: (
            states(workspace, archive.key)
            == {DeliveryState.SENT: 1, DeliveryState.CANCELLED: 1}
        ),
        timeout=10_000,
    )

    with qtbot.waitSignal(service.action_done, timeout=5_000) as retried:
        service.retry(ids[:1])
    assert retried.args == ["Deliveries queued again: 1"]
    qtbot.waitUntil(
        lambda: states(workspace, archive.key) == {DeliveryState.SENT: 2},
        timeout=10_000,
    )


def test_send_now_rejects_deactivated_server(
    qtbot: QtBot,
    workspace: Workspace,
    exams: list[Exam],
    make_service: Callable[..., SendingService],
) -> None:
    off = workspace.servers.add("Old PACS", ServerAction.DEACTIVATED, storage(11112))
    workspace.save_servers()
    service = make_service()

    with qtbot.waitSignal(service.action_failed, timeout=5_000) as failed:
        service.send_now([exams[0].exam_id], off.key)

    assert "is deactivated" in str(failed.args[0])
    assert workspace.outbox.counts() == {}
