from __future__ import annotations

import random
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import (
    SCHEMA_VERSION,
    Delivery,
    DeliveryItem,
    DeliveryState,
    ErrorClass,
    EventKind,
    Jitter,
    Outbox,
    OutboxBusyError,
    OutboxError,
    Outcome,
    PauseReason,
    RetryPolicy,
    Route,
)
from eyer_desktop.core.paths import AppPaths
from tests.helpers.delivery_data import make_items
from tests.helpers.fake_clock import FakeClock

PRIMARY = {"EYE001": Route.PRIMARY}
NO_JITTER = RetryPolicy(jitter=Jitter.NONE)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox_path(isolated_profile: AppPaths) -> Path:
    return isolated_profile.outbox_file


@pytest.fixture
def outbox(outbox_path: Path, clock: FakeClock) -> Iterator[Outbox]:
    with Outbox(outbox_path, clock=clock, retry_policy=NO_JITTER) as box:
        yield box


def claim_one(outbox: Outbox, server_key: str = "EYE001") -> Delivery:
    claimed = outbox.claim_due(server_key, 1)
    assert len(claimed) == 1
    return claimed[0]


# Opening and schema


def test_open_creates_schema_in_wal_mode(outbox: Outbox, outbox_path: Path) -> None:
    assert outbox_path.exists()
    with sqlite3.connect(outbox_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


def test_open_rejects_newer_schema(outbox_path: Path) -> None:
    outbox_path.parent.mkdir(parents=True)
    db = sqlite3.connect(outbox_path)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.close()

    with pytest.raises(OutboxError, match="newer than version"):
        Outbox(outbox_path)


def test_open_rejects_damaged_file(outbox_path: Path) -> None:
    outbox_path.parent.mkdir(parents=True)
    outbox_path.write_bytes(b"this is not an SQLite database, " * 64)

    with pytest.raises(OutboxError, match=str(outbox_path.name)):
        Outbox(outbox_path)


def test_reopen_keeps_deliveries(outbox_path: Path, clock: FakeClock) -> None:
    with Outbox(outbox_path, clock=clock) as first:
        first.enqueue(make_items("a", 3), PRIMARY)

    with Outbox(outbox_path, clock=clock) as second:
        assert len(second.deliveries()) == 3
        assert second.recovered_on_open == 0


def test_closed_outbox_raises_outbox_error(outbox_path: Path) -> None:
    box = Outbox(outbox_path)
    box.close()

    with pytest.raises(OutboxError, match="cannot be read or written"):
        box.deliveries()


# Enqueueing


def test_enqueue_creates_one_per_image_and_server(outbox: Outbox) -> None:
    targets = {"EYE001": Route.PRIMARY, "PAC123": Route.MIRROR}

    created = outbox.enqueue(make_items("a", 3), targets)

    assert created == 6
    rows = outbox.deliveries()
    assert {(row.image_id, row.server_key) for row in rows} == {
        (item.image_id, key) for item in make_items("a", 3) for key in targets
    }
    assert all(row.state is DeliveryState.QUEUED for row in rows)
    assert all(row.attempts == 0 for row in rows)
    assert {row.route for row in rows if row.server_key == "PAC123"} == {Route.MIRROR}


def test_enqueue_twice_creates_no_duplicates(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 3), PRIMARY)

    created = outbox.enqueue(make_items("a", 3), PRIMARY)

    assert created == 0
    assert len(outbox.deliveries()) == 3


def test_enqueue_after_sent_leaves_delivery_sent(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})

    created = outbox.enqueue(make_items("a", 1), PRIMARY)

    assert created == 0
    assert outbox.get(delivery.delivery_id).state is DeliveryState.SENT


def test_resend_requeues_sent_with_same_uid(outbox: Outbox, clock: FakeClock) -> None:
    items = make_items("a", 1)
    outbox.enqueue(items, PRIMARY)
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})
    clock.advance(600)

    queued = outbox.enqueue(items, {"EYE001": Route.MANUAL}, resend=True)

    assert queued == 1
    resent = outbox.get(delivery.delivery_id)
    assert resent.state is DeliveryState.QUEUED
    assert resent.sop_instance_uid == items[0].sop_instance_uid
    assert resent.attempts == 0
    assert resent.next_attempt_at == clock()
    assert resent.route is Route.PRIMARY
    assert outbox.history(items[0].exam_id)[-1].kind is EventKind.RESEND


def test_resend_leaves_queued_delivery_alone(outbox: Outbox) -> None:
    items = make_items("a", 2)
    outbox.enqueue(items, PRIMARY)

    queued = outbox.enqueue(items, PRIMARY, resend=True)

    assert queued == 0
    kinds = [event.kind for event in outbox.history(items[0].exam_id)]
    assert kinds == [EventKind.QUEUED, EventKind.QUEUED]


def test_enqueue_rejects_changed_sop_instance_uid(outbox: Outbox) -> None:
    item = make_items("a", 1)[0]
    outbox.enqueue([item], PRIMARY)
    changed = DeliveryItem(item.exam_id, item.image_id, "2.25.1")

    with pytest.raises(ValueError, match="SOP Instance UID"):
        outbox.enqueue([changed], PRIMARY)

    assert outbox.get(1).sop_instance_uid == item.sop_instance_uid


def test_enqueue_is_one_transaction(outbox: Outbox) -> None:
    item = make_items("a", 1)[0]
    outbox.enqueue([item], PRIMARY)
    fresh = make_items("b", 1)[0]
    changed = DeliveryItem(item.exam_id, item.image_id, "2.25.1")

    with pytest.raises(ValueError, match="SOP Instance UID"):
        outbox.enqueue([fresh, changed], PRIMARY)

    assert outbox.deliveries(exam_id=fresh.exam_id) == []


# Claiming and outcomes


def test_claim_due_marks_sending_and_counts_attempt(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)

    delivery = claim_one(outbox)

    assert delivery.state is DeliveryState.SENDING
    assert delivery.attempts == 1
    assert outbox.get(delivery.delivery_id).state is DeliveryState.SENDING
    assert outbox.claim_due("EYE001", 10) == []


def test_claim_due_respects_limit_and_order(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("first", 2), PRIMARY)
    clock.advance(1)
    outbox.enqueue(make_items("second", 2), PRIMARY)

    batch = outbox.claim_due("EYE001", 3)

    assert [delivery.delivery_id for delivery in batch] == [1, 2, 3]
    assert len(outbox.deliveries(states=[DeliveryState.QUEUED])) == 1


def test_claim_due_takes_only_that_server(outbox: Outbox) -> None:
    outbox.enqueue(
        make_items("a", 2), {"EYE001": Route.PRIMARY, "PAC123": Route.MIRROR}
    )

    batch = outbox.claim_due("PAC123", 10)

    assert {delivery.server_key for delivery in batch} == {"PAC123"}
    assert len(batch) == 2


def test_claim_due_rejects_zero_limit(outbox: Outbox) -> None:
    with pytest.raises(ValueError, match="limit"):
        outbox.claim_due("EYE001", 0)


def test_sent_outcome_finishes_delivery(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)
    clock.advance(2)

    [updated] = outbox.record_outcomes({delivery.delivery_id: Outcome.sent(0)})

    assert updated.state is DeliveryState.SENT
    assert updated.sent_at == clock()
    assert updated.status_code == 0
    assert updated.next_attempt_at is None
    assert updated.last_error is None


def test_warning_outcome_finishes_delivery(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)

    [updated] = outbox.record_outcomes(
        {delivery.delivery_id: Outcome.warning(0xB000, "coercion of data elements")}
    )

    assert updated.state is DeliveryState.WARNING
    assert updated.status_code == 0xB000
    assert updated.last_error == "coercion of data elements"
    assert updated.sent_at is not None


def test_permanent_failure_waits_for_user(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)
    error = DeliveryError("SOP class not supported", transient=False, code=0x0122)

    outbox.record_outcomes({delivery.delivery_id: Outcome.from_error(error)})
    clock.advance(10 * 24 * 3600)

    failed = outbox.get(delivery.delivery_id)
    assert failed.state is DeliveryState.FAILED
    assert failed.error_class is ErrorClass.PERMANENT
    assert failed.status_code == 0x0122
    assert failed.last_error == "SOP class not supported"
    assert failed.next_attempt_at is None
    assert outbox.due_server_keys() == []


def test_transient_failure_is_retried_later(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)

    outbox.record_outcomes(
        {delivery.delivery_id: Outcome.failed("connection refused", transient=True)}
    )

    queued = outbox.get(delivery.delivery_id)
    assert queued.state is DeliveryState.QUEUED
    assert queued.error_class is ErrorClass.TRANSIENT
    assert queued.last_error == "connection refused"
    assert queued.next_attempt_at == clock() + 30
    assert outbox.claim_due("EYE001", 10) == []
    clock.advance(30)
    assert [d.delivery_id for d in outbox.claim_due("EYE001", 10)] == [1]


def test_outcome_for_unclaimed_delivery_is_ignored(
    outbox: Outbox, caplog: pytest.LogCaptureFixture
) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)

    updated = outbox.record_outcomes({1: Outcome.sent(), 99: Outcome.sent()})

    assert updated == []
    assert outbox.get(1).state is DeliveryState.QUEUED
    assert "delivery 1: it is not being sent" in caplog.text
    assert "delivery 99" in caplog.text


def test_backoff_schedule_doubles_to_cap(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delays = []
    for _ in range(10):
        delivery = claim_one(outbox)
        outcome = Outcome.failed("timed out", transient=True)
        [updated] = outbox.record_outcomes({delivery.delivery_id: outcome})
        assert updated.next_attempt_at is not None
        delays.append(updated.next_attempt_at - clock())
        clock.advance(delays[-1])

    assert delays == [30, 60, 120, 240, 480, 960, 1920, 3600, 3600, 3600]
    assert outbox.get(1).attempts == 10


def test_next_due_at_is_earliest_queued(outbox: Outbox, clock: FakeClock) -> None:
    assert outbox.next_due_at() is None
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.failed("x", transient=True)})

    assert outbox.next_due_at() == clock() + 30


def test_postpone_due_moves_only_earlier_queued(
    outbox: Outbox, clock: FakeClock
) -> None:
    outbox.enqueue(make_items("a", 3), PRIMARY)
    outbox.enqueue(make_items("b", 1), {"PAC123": Route.MIRROR})

    postponed = outbox.postpone_due("EYE001", clock() + 60)

    assert postponed == 3
    assert outbox.due_server_keys() == ["PAC123"]
    assert {d.attempts for d in outbox.deliveries()} == {0}


# Retry policy


def test_retry_policy_backoff_without_jitter() -> None:
    policy = RetryPolicy(initial_delay=10, multiplier=3, max_delay=100)

    assert [policy.backoff(n) for n in range(1, 6)] == [10, 30, 90, 100, 100]


def test_retry_policy_survives_huge_attempt_counts() -> None:
    policy = RetryPolicy(multiplier=10)

    assert policy.backoff(100_000) == policy.max_delay


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"initial_delay": 0}, "initial_delay"),
        ({"multiplier": 0.5}, "multiplier"),
        ({"initial_delay": 60, "max_delay": 30}, "max_delay"),
        ({"jitter": "sometimes"}, "sometimes"),
    ],
)
def test_retry_policy_rejects_invalid_options(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        RetryPolicy(**options)  # type: ignore[arg-type]


@given(attempts=st.integers(1, 5000), seed=st.integers(0, 2**32))
def test_equal_jitter_stays_within_half_and_full(attempts: int, seed: int) -> None:
    policy = RetryPolicy(jitter=Jitter.EQUAL)
    backoff = policy.backoff(attempts)

    delay = policy.delay(attempts, random.Random(seed))

    assert backoff / 2 <= delay <= backoff


@given(attempts=st.integers(1, 5000), seed=st.integers(0, 2**32))
def test_full_jitter_stays_within_zero_and_full(attempts: int, seed: int) -> None:
    policy = RetryPolicy(jitter=Jitter.FULL)

    delay = policy.delay(attempts, random.Random(seed))

    assert 0 <= delay <= policy.backoff(attempts)


def test_jitter_spreads_delays() -> None:
    policy = RetryPolicy(jitter=Jitter.EQUAL)
    rng = random.Random(7)

    delays = {round(policy.delay(3, rng), 3) for _ in range(50)}

    assert len(delays) > 40
    assert min(delays) < 70 < max(delays)


def test_outbox_applies_policy_jitter(outbox_path: Path, clock: FakeClock) -> None:
    policy = RetryPolicy(jitter=Jitter.FULL)
    with Outbox(
        outbox_path, clock=clock, retry_policy=policy, rng=random.Random(3)
    ) as box:
        box.enqueue(make_items("a", 20), PRIMARY)
        batch = box.claim_due("EYE001", 20)
        failure = Outcome.failed("timed out", transient=True)

        updated = box.record_outcomes({d.delivery_id: failure for d in batch})

    delays = [d.next_attempt_at - clock() for d in updated if d.next_attempt_at]
    assert len(delays) == 20
    assert all(0 <= delay <= 30 for delay in delays)
    assert len(set(delays)) == 20


# Pause and resume


def test_pause_holds_queued_deliveries(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 2), PRIMARY)

    paused = outbox.pause("EYE001")

    assert paused == 2
    assert {d.state for d in outbox.deliveries()} == {DeliveryState.PAUSED}
    assert outbox.claim_due("EYE001", 10) == []
    assert outbox.due_server_keys() == []
    assert outbox.paused_servers() == {"EYE001": frozenset({PauseReason.USER})}


def test_enqueue_to_paused_server_waits(outbox: Outbox) -> None:
    outbox.pause("EYE001")

    outbox.enqueue(make_items("a", 2), PRIMARY)

    assert {d.state for d in outbox.deliveries()} == {DeliveryState.PAUSED}


def test_resume_queues_paused_now(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 2), PRIMARY)
    outbox.pause("EYE001")
    clock.advance(3600)

    resumed = outbox.resume("EYE001")

    assert resumed == 2
    assert {d.state for d in outbox.deliveries()} == {DeliveryState.QUEUED}
    assert {d.next_attempt_at for d in outbox.deliveries()} == {clock()}
    assert outbox.paused_servers() == {}


def test_resume_waits_for_every_reason(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 2), PRIMARY)
    outbox.pause("EYE001", PauseReason.USER)
    outbox.pause("EYE001", PauseReason.INACTIVE)

    assert outbox.resume("EYE001", PauseReason.INACTIVE) == 0
    assert {d.state for d in outbox.deliveries()} == {DeliveryState.PAUSED}
    assert outbox.resume("EYE001", PauseReason.USER) == 2


def test_pause_does_not_touch_other_servers(outbox: Outbox) -> None:
    outbox.enqueue(
        make_items("a", 1), {"EYE001": Route.PRIMARY, "PAC123": Route.MIRROR}
    )

    outbox.pause("EYE001")

    assert outbox.due_server_keys() == ["PAC123"]


def test_transient_failure_on_paused_server_pauses(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)
    outbox.pause("EYE001")

    outbox.record_outcomes({delivery.delivery_id: Outcome.failed("x", transient=True)})

    assert outbox.get(delivery.delivery_id).state is DeliveryState.PAUSED


def test_sending_delivery_finishes_while_paused(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)

    outbox.pause("EYE001")
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})

    assert outbox.get(delivery.delivery_id).state is DeliveryState.SENT


# Retry and cancel


def test_retry_one_failed_delivery(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 2), PRIMARY)
    first, second = outbox.claim_due("EYE001", 2)
    rejected = Outcome.failed("rejected", transient=False)
    outbox.record_outcomes({first.delivery_id: rejected, second.delivery_id: rejected})

    retried = outbox.retry([first.delivery_id])

    assert retried == 1
    again = outbox.get(first.delivery_id)
    assert again.state is DeliveryState.QUEUED
    assert again.attempts == 0
    assert again.next_attempt_at == clock()
    assert again.last_error is None
    assert outbox.get(second.delivery_id).state is DeliveryState.FAILED


def test_retry_failed_takes_every_failed(outbox: Outbox) -> None:
    targets = {"EYE001": Route.PRIMARY, "PAC123": Route.MIRROR}
    outbox.enqueue(make_items("a", 2), targets)
    rejected = Outcome.failed("rejected", transient=False)
    for key in targets:
        batch = outbox.claim_due(key, 10)
        outbox.record_outcomes({d.delivery_id: rejected for d in batch})

    assert outbox.retry_failed("PAC123") == 2
    assert outbox.counts()["EYE001"][DeliveryState.FAILED] == 2
    assert outbox.retry_failed() == 2
    assert outbox.counts()["EYE001"][DeliveryState.QUEUED] == 2


def test_retry_ignores_unfinished_and_sent(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 2), PRIMARY)
    sent = claim_one(outbox)
    outbox.record_outcomes({sent.delivery_id: Outcome.sent()})

    assert outbox.retry([1, 2, 404]) == 0


def test_cancel_queued_failed_and_sending(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 3), PRIMARY)
    sending, failing = outbox.claim_due("EYE001", 2)
    outbox.record_outcomes({failing.delivery_id: Outcome.failed("x", transient=False)})

    cancelled = outbox.cancel([1, 2, 3])

    assert cancelled == 3
    assert outbox.get(sending.delivery_id).state is DeliveryState.CANCELLED
    assert outbox.get(failing.delivery_id).state is DeliveryState.CANCELLED
    assert outbox.get(3).state is DeliveryState.CANCELLED
    assert outbox.due_server_keys() == []


@pytest.mark.parametrize(
    "outcome",
    [
        Outcome.sent(),
        Outcome.failed("x", transient=True),
        Outcome.failed("x", transient=False),
    ],
)
def test_outcome_after_cancel_ignored(outbox: Outbox, outcome: Outcome) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    delivery = claim_one(outbox)
    outbox.cancel([delivery.delivery_id])

    updated = outbox.record_outcomes({delivery.delivery_id: outcome})

    assert updated == []
    assert outbox.get(delivery.delivery_id).state is DeliveryState.CANCELLED
    assert outbox.next_due_at() is None


def test_retry_brings_back_cancelled(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), PRIMARY)
    outbox.cancel([1])

    assert outbox.retry([1]) == 1
    assert outbox.get(1).state is DeliveryState.QUEUED


# Reading


def test_counts_per_server_and_state(outbox: Outbox) -> None:
    outbox.enqueue(
        make_items("a", 3), {"EYE001": Route.PRIMARY, "PAC123": Route.MIRROR}
    )
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})
    outbox.pause("PAC123")

    counts = outbox.counts()

    assert counts["EYE001"][DeliveryState.SENT] == 1
    assert counts["EYE001"][DeliveryState.QUEUED] == 2
    assert counts["EYE001"][DeliveryState.FAILED] == 0
    assert counts["PAC123"][DeliveryState.PAUSED] == 3
    assert set(counts) == {"EYE001", "PAC123"}


def test_deliveries_filters(outbox: Outbox) -> None:
    outbox.enqueue(
        make_items("a", 2), {"EYE001": Route.PRIMARY, "PAC123": Route.MIRROR}
    )
    outbox.enqueue(make_items("b", 2), PRIMARY)
    exam_b = make_items("b")[0].exam_id
    claim_one(outbox)

    assert len(outbox.deliveries()) == 6
    assert len(outbox.deliveries(server_key="PAC123")) == 2
    assert len(outbox.deliveries(exam_id=exam_b)) == 2
    assert len(outbox.deliveries(route=Route.MIRROR)) == 2
    assert len(outbox.deliveries(states=[DeliveryState.SENDING])) == 1
    assert [d.delivery_id for d in outbox.deliveries(limit=2, offset=1)] == [2, 3]
    assert outbox.deliveries(server_key="PAC123", exam_id=exam_b) == []


def test_get_unknown_delivery_raises_key_error(outbox: Outbox) -> None:
    with pytest.raises(KeyError):
        outbox.get(404)


def test_history_records_each_step(outbox: Outbox, clock: FakeClock) -> None:
    items = make_items("a", 1)
    outbox.enqueue(items, PRIMARY)
    delivery = claim_one(outbox)
    outbox.record_outcomes(
        {delivery.delivery_id: Outcome.failed("timed out", transient=True)}
    )
    clock.advance(30)
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent(0)})

    history = outbox.history(items[0].exam_id)

    assert [event.kind for event in history] == [
        EventKind.QUEUED,
        EventKind.SENDING,
        EventKind.RETRY_SCHEDULED,
        EventKind.SENDING,
        EventKind.SENT,
    ]
    assert [event.attempt for event in history] == [0, 1, 1, 2, 2]
    assert history[2].detail == "timed out (next attempt in 30 s)"
    assert history[-1].at == clock()
    assert {event.server_key for event in history} == {"EYE001"}
    assert {event.image_id for event in history} == {items[0].image_id}


def test_history_stores_no_patient_data(outbox: Outbox, outbox_path: Path) -> None:
    outbox.enqueue(make_items("a", 2), PRIMARY)
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})
    outbox.close()

    # Closing the last connection checkpoints the WAL into the main file.
    content = outbox_path.read_bytes()

    # make_exam's patient is "Test^Patient" with document number 000000.
    assert b"Patient" not in content
    assert b"000000" not in content


def test_purge_deletes_old_finished_only(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("old", 2), PRIMARY)
    for delivery in outbox.claim_due("EYE001", 2):
        outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})
    outbox.enqueue(make_items("waiting", 1), PRIMARY)
    clock.advance(90 * 24 * 3600)

    purged = outbox.purge_finished(before=clock() - 30 * 24 * 3600)

    assert purged == 2
    assert [d.image_id for d in outbox.deliveries()] == [
        make_items("waiting", 1)[0].image_id
    ]
    assert outbox.history(make_items("old")[0].exam_id) == []
    assert len(outbox.history(make_items("waiting")[0].exam_id)) == 1


# Copies between routes


def test_enqueue_exams_from_copies_once(outbox: Outbox) -> None:
    items = make_items("a", 3)
    outbox.enqueue(items, PRIMARY)
    contingency = {"BAK001": Route.CONTINGENCY}

    first = outbox.enqueue_exams_from(Route.PRIMARY, contingency, [items[0].exam_id])
    second = outbox.enqueue_exams_from(Route.PRIMARY, contingency, [items[0].exam_id])

    assert first == 3
    assert second == 0
    copies = outbox.deliveries(server_key="BAK001")
    assert [d.sop_instance_uid for d in copies] == [i.sop_instance_uid for i in items]
    assert {d.route for d in copies} == {Route.CONTINGENCY}


def test_enqueue_exams_from_skips_cancelled_copy(outbox: Outbox) -> None:
    items = make_items("a", 1)
    outbox.enqueue(items, PRIMARY)
    contingency = {"BAK001": Route.CONTINGENCY}
    outbox.enqueue_exams_from(Route.PRIMARY, contingency, [items[0].exam_id])
    outbox.cancel([2])

    assert outbox.enqueue_exams_from(Route.PRIMARY, contingency, None) == 0
    assert outbox.get(2).state is DeliveryState.CANCELLED


def test_enqueue_exams_from_all_takes_unfinished_exams(outbox: Outbox) -> None:
    outbox.enqueue(make_items("done", 1), PRIMARY)
    delivery = claim_one(outbox)
    outbox.record_outcomes({delivery.delivery_id: Outcome.sent()})
    outbox.enqueue(make_items("waiting", 2), PRIMARY)

    created = outbox.enqueue_exams_from(
        Route.PRIMARY, {"BAK001": Route.CONTINGENCY}, None
    )

    assert created == 2
    copied = {d.exam_id for d in outbox.deliveries(server_key="BAK001")}
    assert copied == {make_items("waiting")[0].exam_id}


# Crash recovery and threads


def test_reopen_requeues_interrupted_sends(outbox_path: Path, clock: FakeClock) -> None:
    first = Outbox(outbox_path, clock=clock)
    first.enqueue(make_items("a", 3), PRIMARY)
    claimed = first.claim_due("EYE001", 2)
    # Leave without recording outcomes, as a killed process would.
    first.close()
    clock.advance(5)

    with Outbox(outbox_path, clock=clock) as second:
        assert second.recovered_on_open == 2
        for delivery in claimed:
            again = second.get(delivery.delivery_id)
            assert again.state is DeliveryState.QUEUED
            assert again.next_attempt_at == clock()
            assert again.attempts == 1
        history = second.history(claimed[0].exam_id)
        assert history[-1].kind is EventKind.RECOVERED


def test_reopen_keeps_paused_server_paused(outbox_path: Path, clock: FakeClock) -> None:
    first = Outbox(outbox_path, clock=clock)
    first.enqueue(make_items("a", 1), PRIMARY)
    first.claim_due("EYE001", 1)
    first.pause("EYE001")
    first.close()

    with Outbox(outbox_path, clock=clock) as second:
        assert second.get(1).state is DeliveryState.PAUSED


def test_threads_claim_each_delivery_once(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 200), PRIMARY)
    claimed: list[int] = []
    lock = threading.Lock()

    def worker() -> None:
        while batch := outbox.claim_due("EYE001", 7):
            outbox.record_outcomes({d.delivery_id: Outcome.sent() for d in batch})
            with lock:
                claimed.extend(d.delivery_id for d in batch)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert sorted(claimed) == list(range(1, 201))
    assert outbox.counts()["EYE001"][DeliveryState.SENT] == 200


def test_two_connections_share_the_file(outbox_path: Path, clock: FakeClock) -> None:
    with (
        Outbox(outbox_path, clock=clock) as writer,
        Outbox(outbox_path, clock=clock) as reader,
    ):
        writer.enqueue(make_items("a", 2), PRIMARY)

        assert len(reader.deliveries()) == 2
        assert len(reader.claim_due("EYE001", 10)) == 2
        with pytest.raises(OutboxBusyError, match="delivering from the outbox"):
            writer.claim_due("EYE001", 10)


def test_opening_during_send_leaves_claimed_rows(
    outbox_path: Path, clock: FakeClock
) -> None:
    with Outbox(outbox_path, clock=clock) as sender:
        sender.enqueue(make_items("a", 3), PRIMARY)
        claimed = sender.claim_due("EYE001", 3)

        with Outbox(outbox_path, clock=clock) as viewer:
            states = {d.state for d in viewer.deliveries()}
            recovered = viewer.recovered_on_open

        outcomes = {d.delivery_id: Outcome.sent() for d in claimed}
        recorded = sender.record_outcomes(outcomes)

    assert recovered == 0
    assert states == {DeliveryState.SENDING}
    assert {d.state for d in recorded} == {DeliveryState.SENT}


def test_sender_lock_passes_on_after_close(outbox_path: Path, clock: FakeClock) -> None:
    first = Outbox(outbox_path, clock=clock)
    first.enqueue(make_items("a", 2), PRIMARY)
    first.claim_due("EYE001", 1)

    with Outbox(outbox_path, clock=clock) as second:
        with pytest.raises(OutboxBusyError):
            second.become_sender()
        first.close()
        second.become_sender()
        states = sorted(d.state for d in second.deliveries())

    assert states == [DeliveryState.QUEUED, DeliveryState.QUEUED]
