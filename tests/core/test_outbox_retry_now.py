"""Outbox.retry_now: failed deliveries and those waiting out a backoff, due now."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eyer_desktop.core.outbox import (
    Delivery,
    DeliveryState,
    EventKind,
    Jitter,
    Outbox,
    Outcome,
    PauseReason,
    RetryPolicy,
    Route,
)
from eyer_desktop.core.paths import AppPaths
from tests.helpers.delivery_data import make_items
from tests.helpers.fake_clock import FakeClock

ARCHIVE = "PAC001"
CLOUD = "EYE000"
TARGETS = {ARCHIVE: Route.MIRROR, CLOUD: Route.PRIMARY}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(isolated_profile: AppPaths, clock: FakeClock) -> Iterator[Outbox]:
    policy = RetryPolicy(jitter=Jitter.NONE)
    with Outbox(isolated_profile.outbox_file, clock=clock, retry_policy=policy) as box:
        yield box


def fail_all(outbox: Outbox, server_key: str, *, transient: bool) -> list[Delivery]:
    """Claim every due delivery to a server and record a failure for each."""
    claimed = outbox.claim_due(server_key, 100)
    outcome = Outcome.failed("connection refused", transient=transient)
    return outbox.record_outcomes({d.delivery_id: outcome for d in claimed})


def states(outbox: Outbox, server_key: str) -> list[DeliveryState]:
    return [d.state for d in outbox.deliveries(server_key=server_key)]


def test_waiting_delivery_due_now(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 2), {ARCHIVE: Route.MIRROR})
    waiting = fail_all(outbox, ARCHIVE, transient=True)
    assert outbox.due_server_keys() == []

    changed = outbox.retry_now(server_key=ARCHIVE)

    assert changed == 2
    assert outbox.due_server_keys() == [ARCHIVE]
    for before in waiting:
        after = outbox.get(before.delivery_id)
        assert after.state is DeliveryState.QUEUED
        assert after.next_attempt_at == clock()
        assert after.attempts == before.attempts == 1
        assert after.last_error == "connection refused"


def test_waiting_delivery_keeps_backoff(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 1), {ARCHIVE: Route.MIRROR})
    fail_all(outbox, ARCHIVE, transient=True)
    outbox.retry_now()

    [again] = fail_all(outbox, ARCHIVE, transient=True)

    assert again.attempts == 2
    assert again.next_attempt_at == clock() + 60


def test_failed_delivery_queued_again(outbox: Outbox, clock: FakeClock) -> None:
    outbox.enqueue(make_items("a", 1), {ARCHIVE: Route.MIRROR})
    [failed] = fail_all(outbox, ARCHIVE, transient=False)
    assert failed.state is DeliveryState.FAILED

    changed = outbox.retry_now(server_key=ARCHIVE)

    retried = outbox.get(failed.delivery_id)
    assert changed == 1
    assert retried.state is DeliveryState.QUEUED
    assert retried.attempts == 0
    assert retried.last_error is None
    assert retried.next_attempt_at == clock()


def test_filters_by_server_and_exam(outbox: Outbox) -> None:
    first, second = make_items("a", 1), make_items("b", 1)
    outbox.enqueue(first + second, TARGETS)
    fail_all(outbox, ARCHIVE, transient=True)
    fail_all(outbox, CLOUD, transient=True)

    changed = outbox.retry_now(server_key=ARCHIVE, exam_id=first[0].exam_id)

    claimed = outbox.claim_due(ARCHIVE, 10)
    assert changed == 1
    assert outbox.due_server_keys() == []
    assert [d.exam_id for d in claimed] == [first[0].exam_id]
    assert outbox.claim_due(CLOUD, 10) == []


def test_without_filters_every_server(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), TARGETS)
    fail_all(outbox, ARCHIVE, transient=True)
    fail_all(outbox, CLOUD, transient=False)

    changed = outbox.retry_now()

    assert changed == 2
    assert outbox.due_server_keys() == [CLOUD, ARCHIVE]


def test_leaves_other_states_alone(outbox: Outbox, clock: FakeClock) -> None:
    items = make_items("a", 4)
    outbox.enqueue(items, {ARCHIVE: Route.MIRROR})
    sent, sending = outbox.claim_due(ARCHIVE, 2)
    cancelled, due = outbox.deliveries()[2:]
    outbox.record_outcomes({sent.delivery_id: Outcome.sent()})
    outbox.cancel([cancelled.delivery_id])
    clock.advance(5)

    changed = outbox.retry_now()

    assert changed == 0
    assert states(outbox, ARCHIVE) == [
        DeliveryState.SENT,
        DeliveryState.SENDING,
        DeliveryState.CANCELLED,
        DeliveryState.QUEUED,
    ]
    assert outbox.get(due.delivery_id).next_attempt_at == clock() - 5
    assert outbox.get(sending.delivery_id).attempts == 1


def test_paused_server_stays_paused(outbox: Outbox) -> None:
    outbox.enqueue(make_items("a", 1), {ARCHIVE: Route.MIRROR})
    fail_all(outbox, ARCHIVE, transient=False)
    outbox.enqueue(make_items("b", 1), {ARCHIVE: Route.MIRROR})
    outbox.pause(ARCHIVE, PauseReason.INACTIVE)

    changed = outbox.retry_now(server_key=ARCHIVE)

    assert changed == 1
    assert states(outbox, ARCHIVE) == [DeliveryState.PAUSED, DeliveryState.PAUSED]
    assert outbox.due_server_keys() == []


def test_history_records_request(outbox: Outbox) -> None:
    items = make_items("a", 1)
    outbox.enqueue(items, {ARCHIVE: Route.MIRROR})
    fail_all(outbox, ARCHIVE, transient=True)

    outbox.retry_now()

    last = outbox.history(items[0].exam_id)[-1]
    assert last.kind is EventKind.RETRY_REQUESTED
    assert last.attempt == 1
    assert "made due now" in last.detail
