"""Reading the outbox's changes since a time, as a polling view does."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from eyer_desktop.core.outbox import DeliveryState, Jitter, Outbox, RetryPolicy
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.routing import enqueue_exam
from tests.helpers.delivery_data import ServerStub, make_exam
from tests.helpers.fake_clock import FakeClock

MIRROR = ServerStub("PAC001", "mirror")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def outbox(isolated_profile: AppPaths, clock: FakeClock) -> Iterator[Outbox]:
    policy = RetryPolicy(jitter=Jitter.NONE)
    with Outbox(isolated_profile.outbox_file, clock=clock, retry_policy=policy) as box:
        yield box


def test_updated_since_keeps_later_changes(outbox: Outbox, clock: FakeClock) -> None:
    enqueue_exam(outbox, [MIRROR], make_exam("a", 3))
    clock.advance(10)
    changed_at = clock()
    first = outbox.deliveries()[0]

    outbox.pause("PAC001")
    outbox.resume("PAC001")
    outbox.cancel([first.delivery_id])

    assert len(outbox.deliveries(updated_since=changed_at)) == 3
    clock.advance(10)
    assert outbox.deliveries(updated_since=clock()) == []


def test_updated_since_includes_boundary(outbox: Outbox, clock: FakeClock) -> None:
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))

    changed = outbox.deliveries(updated_since=clock())

    assert len(changed) == 2


def test_updated_since_combines_with_state(outbox: Outbox, clock: FakeClock) -> None:
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))
    clock.advance(5)
    first = outbox.deliveries()[0]
    outbox.cancel([first.delivery_id])

    changed = outbox.deliveries(updated_since=clock(), states=[DeliveryState.CANCELLED])

    assert [d.delivery_id for d in changed] == [first.delivery_id]


def test_postpone_due_stamps_update(outbox: Outbox, clock: FakeClock) -> None:
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))
    clock.advance(5)

    postponed = outbox.postpone_due("PAC001", clock() + 60)

    assert postponed == 2
    changed = outbox.deliveries(updated_since=clock())
    assert len(changed) == 2
    assert {d.next_attempt_at for d in changed} == {clock() + 60}
