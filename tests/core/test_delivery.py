from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Sequence

import pytest

from eyer_desktop.core.delivery import DeliveryEngine, RunSummary
from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import (
    DeliveryState,
    ErrorClass,
    Jitter,
    Outbox,
    Outcome,
    RetryPolicy,
    Route,
)
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.routing import enqueue_exam
from tests.helpers.delivery_data import ServerStub, make_exam
from tests.helpers.fake_clock import FakeClock
from tests.helpers.fake_sender import OMIT, FakeSender

CLOUD = ServerStub("EYE001", "primary")
MIRROR = ServerStub("PAC001", "mirror")
BACKUP = ServerStub("BAK001", "contingency")

REFUSED = DeliveryError("connection refused", transient=True)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(isolated_profile: AppPaths, clock: FakeClock) -> Iterator[Outbox]:
    policy = RetryPolicy(jitter=Jitter.NONE)
    with Outbox(isolated_profile.outbox_file, clock=clock, retry_policy=policy) as box:
        yield box


@pytest.fixture
def sender() -> FakeSender:
    return FakeSender()


@pytest.fixture
def servers() -> list[ServerStub]:
    return [CLOUD, MIRROR, BACKUP]


def make_engine(
    outbox: Outbox,
    sender: FakeSender,
    servers: Sequence[ServerStub],
    clock: FakeClock,
    batch_size: int = 100,
) -> DeliveryEngine:
    return DeliveryEngine(
        outbox,
        sender,
        servers=lambda: servers,
        clock=clock,
        sleep=clock.sleep,
        batch_size=batch_size,
    )


@pytest.fixture
def engine(
    outbox: Outbox, sender: FakeSender, servers: list[ServerStub], clock: FakeClock
) -> DeliveryEngine:
    return make_engine(outbox, sender, servers, clock)


def states(outbox: Outbox, server_key: str) -> dict[DeliveryState, int]:
    counts = outbox.counts()[server_key]
    return {state: count for state, count in counts.items() if count}


def test_run_once_sends_one_batch_per_server(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    servers: list[ServerStub],
) -> None:
    enqueue_exam(outbox, servers, make_exam("a", 3))

    summary = engine.run_once()

    assert summary == RunSummary(batches=2, sent=6)
    assert sorted(batch.server_key for batch in sender.batches) == ["EYE001", "PAC001"]
    assert states(outbox, "EYE001") == {DeliveryState.SENT: 3}
    assert states(outbox, "PAC001") == {DeliveryState.SENT: 3}


def test_run_once_with_nothing_due(engine: DeliveryEngine, sender: FakeSender) -> None:
    assert engine.run_once() == RunSummary()
    assert sender.batches == []


def test_batches_split_at_batch_size(
    outbox: Outbox, sender: FakeSender, clock: FakeClock
) -> None:
    engine = make_engine(outbox, sender, [CLOUD], clock, batch_size=4)
    enqueue_exam(outbox, [CLOUD], make_exam("a", 10))

    summary = engine.run_once()

    assert [len(batch.deliveries) for batch in sender.batches] == [4, 4, 2]
    assert summary.batches == 3
    assert summary.sent == 10


def test_transient_item_failure_retries_with_backoff(
    outbox: Outbox, sender: FakeSender, clock: FakeClock
) -> None:
    engine = make_engine(outbox, sender, [CLOUD], clock)
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD], exam)
    flaky = exam.images[0].image_id
    timed_out = Outcome.failed("timed out", transient=True)
    sender.script("EYE001", flaky, timed_out, timed_out)
    start = clock()

    summary = engine.run_until_idle(deadline=start + 3600)

    assert summary.idle
    assert summary.sent == 2
    assert summary.retries == 2
    assert clock.sleeps == [30, 60]
    assert sender.image_ids_sent_to("EYE001").count(flaky) == 3
    assert states(outbox, "EYE001") == {DeliveryState.SENT: 2}


def test_permanent_item_failure_is_not_retried(
    outbox: Outbox,
    sender: FakeSender,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = make_engine(outbox, sender, [CLOUD], clock)
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD], exam)
    rejected = Outcome.failed("SOP class not supported", transient=False, code=0x0122)
    sender.script("EYE001", exam.images[1].image_id, rejected)

    summary = engine.run_until_idle(deadline=clock() + 3600)

    assert summary.idle
    assert summary == RunSummary(batches=1, sent=1, failed=1)
    [failed] = outbox.deliveries(states=[DeliveryState.FAILED])
    assert failed.image_id == exam.images[1].image_id
    assert failed.status_code == 0x0122
    assert clock.sleeps == []
    assert "failed permanently (status 290 (0x0122))" in caplog.text


def test_missing_outcome_is_never_marked_sent(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD], exam)
    sender.script("EYE001", exam.images[0].image_id, OMIT)

    summary = engine.run_once()

    assert summary == RunSummary(batches=1, sent=1, retries=1)
    unconfirmed = outbox.get(1)
    assert unconfirmed.state is DeliveryState.QUEUED
    assert unconfirmed.error_class is ErrorClass.TRANSIENT
    assert unconfirmed.last_error == "the sender reported no outcome"
    assert "no outcome for delivery 1" in caplog.text


def test_unreachable_server_does_not_stop_others(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    enqueue_exam(outbox, [CLOUD, MIRROR], make_exam("a", 2))
    sender.fail_server("PAC001", REFUSED)

    summary = engine.run_once()

    assert summary == RunSummary(batches=2, sent=2, retries=2)
    assert states(outbox, "EYE001") == {DeliveryState.SENT: 2}
    assert states(outbox, "PAC001") == {DeliveryState.QUEUED: 2}
    assert outbox.next_due_at() == clock() + 30
    assert caplog.text.count("connection refused") == 1


def test_unreachable_server_postpones_untried_deliveries(
    outbox: Outbox, sender: FakeSender, clock: FakeClock
) -> None:
    engine = make_engine(outbox, sender, [MIRROR], clock, batch_size=2)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 6))
    sender.fail_server("PAC001", REFUSED)

    engine.run_once()

    assert len(sender.batches) == 1
    waiting = outbox.deliveries()
    assert {d.next_attempt_at for d in waiting} == {clock() + 30}
    assert [d.attempts for d in waiting] == [1, 1, 0, 0, 0, 0]

    sender.heal_server("PAC001")
    clock.advance(30)
    summary = engine.run_once()

    assert summary.sent == 6


def test_rejected_association_fails_whole_batch(
    engine: DeliveryEngine, outbox: Outbox, sender: FakeSender, clock: FakeClock
) -> None:
    enqueue_exam(outbox, [MIRROR], make_exam("a", 3))
    sender.fail_server(
        "PAC001",
        DeliveryError("association rejected: called AE title", transient=False),
    )

    summary = engine.run_until_idle(deadline=clock() + 3600)

    assert summary.idle
    assert summary.failed == 3
    assert states(outbox, "PAC001") == {DeliveryState.FAILED: 3}
    assert {d.last_error for d in outbox.deliveries()} == {
        "association rejected: called AE title"
    }


def test_sender_bug_counts_as_transient(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    enqueue_exam(outbox, [CLOUD], make_exam("a", 2))
    sender.fail_server("EYE001", RuntimeError("bug in sender"))

    summary = engine.run_once()

    assert summary.retries == 2
    assert states(outbox, "EYE001") == {DeliveryState.QUEUED: 2}
    assert "internal error in the sender" in (outbox.get(1).last_error or "")
    assert "Sender failed on a batch to EYE001" in caplog.text


def test_failing_primary_sends_exam_to_contingency_once(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    servers: list[ServerStub],
    clock: FakeClock,
) -> None:
    exam = make_exam("a", 2)
    enqueue_exam(outbox, servers, exam)
    sender.fail_server("EYE001", REFUSED)

    engine.run_once()
    clock.advance(30)
    engine.run_once()

    assert states(outbox, "BAK001") == {DeliveryState.SENT: 2}
    assert len(sender.batches_to("BAK001")) == 1
    assert states(outbox, "EYE001") == {DeliveryState.QUEUED: 2}
    assert {d.attempts for d in outbox.deliveries(server_key="EYE001")} == {2}

    sender.heal_server("EYE001")
    summary = engine.run_until_idle(deadline=clock() + 3600)

    assert summary.idle
    assert states(outbox, "EYE001") == {DeliveryState.SENT: 2}
    assert len(sender.batches_to("BAK001")) == 1


def test_one_failed_primary_image_sends_whole_exam(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    servers: list[ServerStub],
) -> None:
    exam = make_exam("a", 3)
    enqueue_exam(outbox, servers, exam)
    rejected = Outcome.failed("rejected", transient=False)
    sender.script("EYE001", exam.images[2].image_id, rejected)

    engine.run_once()
    engine.run_once()

    assert sorted(sender.image_ids_sent_to("BAK001")) == sorted(
        image.image_id for image in exam.images
    )


def test_working_primary_gives_contingency_nothing(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    servers: list[ServerStub],
) -> None:
    enqueue_exam(outbox, servers, make_exam("a", 2))

    engine.run_once()

    assert sender.batches_to("BAK001") == []
    assert "BAK001" not in outbox.counts()


def test_failing_mirror_gives_contingency_nothing(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    servers: list[ServerStub],
) -> None:
    enqueue_exam(outbox, servers, make_exam("a", 2))
    sender.fail_server("PAC001", REFUSED)

    engine.run_once()

    assert "BAK001" not in outbox.counts()


def test_deactivated_server_rows_wait_for_reactivation(
    outbox: Outbox, sender: FakeSender, clock: FakeClock
) -> None:
    servers: list[ServerStub] = [CLOUD, MIRROR]
    engine = make_engine(outbox, sender, servers, clock)
    enqueue_exam(outbox, servers, make_exam("a", 2))
    servers[1] = ServerStub("PAC001", "deactivated")

    summary = engine.run_until_idle(deadline=clock() + 3600)

    assert summary.idle
    assert sender.batches_to("PAC001") == []
    assert states(outbox, "PAC001") == {DeliveryState.PAUSED: 2}

    servers[1] = MIRROR
    engine.run_once()

    assert states(outbox, "PAC001") == {DeliveryState.SENT: 2}


def test_blocked_server_does_not_hold_up_others(
    engine: DeliveryEngine, outbox: Outbox, sender: FakeSender
) -> None:
    # EYE001 blocks until PAC001 is sent to; run in sequence, EYE001 would wait
    # out the fake's 10 s gate and fail.
    enqueue_exam(outbox, [CLOUD, MIRROR], make_exam("a", 2))
    sender.hold_until("EYE001", threading.Event(), released_by="PAC001")

    summary = engine.run_once()

    assert summary.sent == 4
    assert states(outbox, "EYE001") == {DeliveryState.SENT: 2}


def test_run_until_idle_stops_at_deadline(
    engine: DeliveryEngine, outbox: Outbox, sender: FakeSender, clock: FakeClock
) -> None:
    enqueue_exam(outbox, [CLOUD], make_exam("a", 1))
    sender.fail_server("EYE001", REFUSED)
    start = clock()

    summary = engine.run_until_idle(deadline=start + 200)

    assert not summary.idle
    assert summary.retries == 3
    assert clock.sleeps == [30, 60]
    assert clock() == start + 90
    assert states(outbox, "EYE001") == {DeliveryState.QUEUED: 1}


def test_engine_logs_ids_not_patient_data(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    exam = make_exam("a", 2)
    enqueue_exam(outbox, [CLOUD], exam)
    retry = Outcome.failed("timed out", transient=True)
    sender.script("EYE001", exam.images[0].image_id, retry)

    engine.run_once()

    assert exam.exam_id in caplog.text
    assert exam.images[0].image_id in caplog.text
    assert "next attempt in 30 s" in caplog.text
    assert exam.patient.name.family not in caplog.text
    assert exam.patient.document.number not in caplog.text


def test_engine_rejects_invalid_sizes(outbox: Outbox, sender: FakeSender) -> None:
    with pytest.raises(ValueError, match="batch_size"):
        DeliveryEngine(outbox, sender, servers=list, batch_size=0)
    with pytest.raises(ValueError, match="max_workers"):
        DeliveryEngine(outbox, sender, servers=list, max_workers=0)


def test_contingency_route_recorded(
    engine: DeliveryEngine,
    outbox: Outbox,
    sender: FakeSender,
    servers: list[ServerStub],
) -> None:
    enqueue_exam(outbox, servers, make_exam("a", 1))
    sender.fail_server("EYE001", REFUSED)

    engine.run_once()

    [copy] = outbox.deliveries(server_key="BAK001")
    assert copy.route is Route.CONTINGENCY
