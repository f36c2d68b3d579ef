"""Progress reports and single-server runs of the delivery engine."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.delivery import (
    DeliveryEngine,
    ServerPhase,
    ServerProgress,
)
from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import (
    DeliveryState,
    Jitter,
    Outbox,
    Outcome,
    RetryPolicy,
)
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.routing import enqueue_exam, send_now
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.sending import create_engine
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace
from tests.helpers.dcmtk import DcmtkServer, run_storescp
from tests.helpers.delivery_data import ServerStub, make_exam
from tests.helpers.fake_clock import FakeClock
from tests.helpers.fake_sender import FakeSender

MIRROR = ServerStub("PAC001", "mirror")
BACKUP = ServerStub("BAK001", "mirror")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(isolated_profile: AppPaths, clock: FakeClock) -> Iterator[Outbox]:
    policy = RetryPolicy(jitter=Jitter.NONE)
    with Outbox(isolated_profile.outbox_file, clock=clock, retry_policy=policy) as box:
        yield box


def make_engine(
    outbox: Outbox,
    sender: FakeSender,
    clock: FakeClock,
    events: list[ServerProgress],
    batch_size: int = 100,
) -> DeliveryEngine:
    return DeliveryEngine(
        outbox,
        sender,
        servers=lambda: [MIRROR, BACKUP],
        clock=clock,
        sleep=clock.sleep,
        batch_size=batch_size,
        progress=events.append,
    )


def test_progress_counts_batches_of_a_run(outbox: Outbox, clock: FakeClock) -> None:
    events: list[ServerProgress] = []
    engine = make_engine(outbox, FakeSender(), clock, events, batch_size=4)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 10))

    summary = engine.run_server("PAC001")

    assert summary.sent == 10
    phases = [event.phase for event in events]
    assert phases == [ServerPhase.CONVERTING, ServerPhase.SENDING] * 3 + [
        ServerPhase.FINISHED
    ]
    assert [event.done for event in events if event.phase is ServerPhase.SENDING] == [
        4,
        8,
        10,
    ]
    assert {event.total for event in events} == {10}
    assert events[-1].summary.sent == 10
    assert events[-1].last_error is None


def test_progress_reports_transient_failure_and_retry_time(
    outbox: Outbox, clock: FakeClock
) -> None:
    events: list[ServerProgress] = []
    sender = FakeSender()
    sender.fail_server("PAC001", DeliveryError("connection refused", transient=True))
    engine = make_engine(outbox, sender, clock, events)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))

    engine.run_server("PAC001")

    final = events[-1]
    assert final.phase is ServerPhase.FINISHED
    assert final.summary.retries == 2
    assert final.last_error == "connection refused"
    assert final.retry_at == pytest.approx(clock() + 30.0)


def test_progress_reports_permanent_failure(outbox: Outbox, clock: FakeClock) -> None:
    events: list[ServerProgress] = []
    sender = FakeSender()
    exam = make_exam("a", 2)
    sender.script(
        "PAC001",
        exam.images[0].image_id,
        Outcome.failed("rejected: SOP class not supported", transient=False),
    )
    engine = make_engine(outbox, sender, clock, events)
    enqueue_exam(outbox, [MIRROR], exam)

    engine.run_server("PAC001")

    final = events[-1]
    assert final.summary.failed == 1
    assert final.summary.sent == 1
    assert final.last_error == "rejected: SOP class not supported"
    assert final.retry_at is None


def test_run_server_leaves_other_servers_alone(
    outbox: Outbox, clock: FakeClock
) -> None:
    sender = FakeSender()
    engine = make_engine(outbox, sender, clock, [])
    enqueue_exam(outbox, [MIRROR, BACKUP], make_exam("a", 2))

    engine.run_server("PAC001")

    assert {batch.server_key for batch in sender.batches} == {"PAC001"}
    assert outbox.counts()["BAK001"][DeliveryState.QUEUED] == 2


def test_run_server_stops_between_batches(outbox: Outbox, clock: FakeClock) -> None:
    events: list[ServerProgress] = []
    engine = make_engine(outbox, FakeSender(), clock, events, batch_size=3)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 9))
    batches_allowed = iter([True, False])

    summary = engine.run_server("PAC001", should_continue=lambda: next(batches_allowed))

    assert summary.sent == 3
    counts = outbox.counts()["PAC001"]
    assert counts[DeliveryState.QUEUED] == 6
    assert counts[DeliveryState.SENDING] == 0
    assert events[-1].phase is ServerPhase.FINISHED


def test_failing_progress_callback_does_not_strand_deliveries(
    outbox: Outbox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def broken(_progress: ServerProgress) -> None:
        raise RuntimeError("callback bug")

    engine = DeliveryEngine(
        outbox, FakeSender(), servers=lambda: [MIRROR], clock=clock, progress=broken
    )
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))

    summary = engine.run_server("PAC001")

    assert summary.sent == 2
    assert outbox.counts()["PAC001"][DeliveryState.SENDING] == 0
    assert "Progress callback failed" in caplog.text


@pytest.fixture
def storescp(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "received", accept_jpeg=True) as server:
        yield server


@pytest.mark.integration
def test_workspace_sender_reports_each_image(
    tmp_path: Path, storescp: DcmtkServer
) -> None:
    workspace = Workspace.open(tmp_path / "profile")
    server = workspace.servers.add(
        "Reading room",
        ServerAction.MANUAL,
        DicomStorageSettings(
            called_ae="STORESCP", host="127.0.0.1", port=storescp.port
        ),
    )
    workspace.save_servers()
    exams = write_sample_exams(workspace.library, size=64)
    stereo = exams[3]
    queued = send_now(workspace.outbox, list(workspace.servers), stereo, server.key)
    events: list[ServerProgress] = []
    engine = create_engine(workspace, progress=events.append, batch_size=4)

    summary = engine.run_server(server.key)
    workspace.close()

    assert summary.sent == queued
    assert len(storescp.received_files()) == queued
    converting = [e.done for e in events if e.phase is ServerPhase.CONVERTING]
    sending = [e.done for e in events if e.phase is ServerPhase.SENDING]
    assert converting[:4] == [0, 0, 1, 2]
    assert sending[-1] == queued
    assert sorted(sending) == sending
    assert max(sending) == queued
    assert all(e.total == queued for e in events)
