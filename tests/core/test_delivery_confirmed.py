"""Outcomes a sender confirms in the middle of a batch, stored before its end."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Callable, Iterator, Mapping, Sequence

import pytest

from eyer_desktop.core.delivery import DeliveryEngine, RunSummary
from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import (
    Delivery,
    DeliveryState,
    Jitter,
    Outbox,
    OutboxError,
    Outcome,
    RetryPolicy,
)
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.routing import enqueue_exam
from tests.helpers.delivery_data import ServerStub, make_exam
from tests.helpers.fake_clock import FakeClock

MIRROR = ServerStub("PAC001", "mirror")

Step = Callable[[Outbox, Delivery], None]


class ConfirmingSender:
    """A sender that confirms each delivery through the engine as it goes.

    Each confirmation is ``confirmation``, ``sent`` unless given. After each
    one it calls ``after_each`` with the outbox and the delivery, so a test
    can look at the outbox in the middle of the batch or change it. With
    ``fail_after``, the whole batch then fails with that error once that many
    deliveries are confirmed. Like the real sender, it stops before a
    delivery once the engine is asked to stop, and returns outcomes for the
    deliveries sent.
    """

    def __init__(
        self,
        after_each: Step | None = None,
        fail_after: tuple[int, DeliveryError] | None = None,
        confirmation: Outcome | None = None,
    ) -> None:
        self.engine: DeliveryEngine | None = None
        self.outbox: Outbox | None = None
        self.after_each = after_each
        self.fail_after = fail_after
        self.confirmation = confirmation or Outcome.sent()
        self.mid_batch_states: list[dict[int, DeliveryState]] = []

    def send(self, server_key: str, batch: Sequence[Delivery]) -> Mapping[int, Outcome]:
        assert self.engine is not None
        assert self.outbox is not None
        sent = []
        for count, delivery in enumerate(batch, start=1):
            if not self.engine.is_running():
                break
            sent.append(delivery)
            self.engine.record_confirmed(
                server_key, delivery.delivery_id, self.confirmation
            )
            if self.after_each is not None:
                self.after_each(self.outbox, delivery)
            self.mid_batch_states.append(
                {d.delivery_id: d.state for d in self.outbox.deliveries()}
            )
            if self.fail_after is not None and count == self.fail_after[0]:
                raise self.fail_after[1]
        return {delivery.delivery_id: Outcome.sent() for delivery in sent}


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
    sender: ConfirmingSender,
    clock: FakeClock,
    record_interval: float = 0.0,
) -> DeliveryEngine:
    engine = DeliveryEngine(
        outbox,
        sender,
        servers=lambda: [MIRROR],
        clock=clock,
        sleep=clock.sleep,
        record_interval=record_interval,
    )
    sender.engine = engine
    sender.outbox = outbox
    return engine


def ignored_outcome_logs(caplog: pytest.LogCaptureFixture) -> list[str]:
    """Return the outbox's log lines about outcomes it did not record."""
    return [
        record.getMessage()
        for record in caplog.records
        if "Ignored the" in record.getMessage()
        or "is not recorded" in record.getMessage()
    ]


def test_confirmed_delivery_stored_mid_batch(
    outbox: Outbox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    sender = ConfirmingSender()
    engine = make_engine(outbox, sender, clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 3))
    ids = sorted(d.delivery_id for d in outbox.deliveries())

    with caplog.at_level(logging.INFO):
        summary = engine.run_once()

    first, second, third = sender.mid_batch_states
    assert first[ids[0]] is DeliveryState.SENT
    assert first[ids[1]] is DeliveryState.SENDING
    assert second[ids[1]] is DeliveryState.SENT
    assert third[ids[2]] is DeliveryState.SENT
    assert summary == RunSummary(batches=1, sent=3)
    assert ignored_outcome_logs(caplog) == []


def test_confirmations_wait_for_the_interval(outbox: Outbox, clock: FakeClock) -> None:
    sender = ConfirmingSender()
    engine = make_engine(outbox, sender, clock, record_interval=3600.0)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 3))

    summary = engine.run_once()

    for states in sender.mid_batch_states:
        assert set(states.values()) == {DeliveryState.SENDING}
    assert summary == RunSummary(batches=1, sent=3)
    assert {d.state for d in outbox.deliveries()} == {DeliveryState.SENT}


def test_confirmed_stay_sent_when_batch_fails(outbox: Outbox, clock: FakeClock) -> None:
    aborted = DeliveryError("association aborted", transient=True)
    sender = ConfirmingSender(fail_after=(2, aborted))
    engine = make_engine(outbox, sender, clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 4))

    summary = engine.run_once()

    states = sorted(d.state for d in outbox.deliveries())
    assert states == [DeliveryState.QUEUED] * 2 + [DeliveryState.SENT] * 2
    assert summary.sent == 2
    assert summary.retries == 2


def test_cancelled_before_confirmation_stays_cancelled(
    outbox: Outbox, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    def cancel_next(box: Outbox, delivery: Delivery) -> None:
        following = [
            d.delivery_id
            for d in box.deliveries()
            if d.delivery_id == delivery.delivery_id + 1
        ]
        box.cancel(following)

    sender = ConfirmingSender(after_each=cancel_next)
    engine = make_engine(outbox, sender, clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))

    with caplog.at_level(logging.INFO):
        summary = engine.run_once()

    states = [d.state for d in sorted(outbox.deliveries(), key=lambda d: d.delivery_id)]
    assert states == [DeliveryState.SENT, DeliveryState.CANCELLED]
    assert summary == RunSummary(batches=1, sent=1)
    assert len(ignored_outcome_logs(caplog)) == 1


def test_outbox_error_defers_storing_to_batch_end(
    outbox: Outbox,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fake for a fault no real peer produces: the outbox file is locked by
    # another program for the first storing, then free again.
    real_record = outbox.record_outcomes
    calls = 0

    def record_once_locked(outcomes: Mapping[int, Outcome]) -> list[Delivery]:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OutboxError("The outbox is locked by another program.")
        return real_record(outcomes)

    monkeypatch.setattr(outbox, "record_outcomes", record_once_locked)
    sender = ConfirmingSender()
    engine = make_engine(outbox, sender, clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 3))

    summary = engine.run_once()

    assert sender.mid_batch_states[0] == {
        d.delivery_id: DeliveryState.SENDING for d in outbox.deliveries()
    }
    assert summary == RunSummary(batches=1, sent=3)
    assert {d.state for d in outbox.deliveries()} == {DeliveryState.SENT}
    assert "locked by another program" in caplog.text


def test_failure_confirmation_ignored(outbox: Outbox, clock: FakeClock) -> None:
    sender = ConfirmingSender(confirmation=Outcome.failed("busy", transient=True))
    engine = make_engine(outbox, sender, clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))

    summary = engine.run_once()

    for states in sender.mid_batch_states:
        assert set(states.values()) == {DeliveryState.SENDING}
    assert summary == RunSummary(batches=1, sent=2)


def test_confirmation_outside_a_run_ignored(outbox: Outbox, clock: FakeClock) -> None:
    engine = make_engine(outbox, ConfirmingSender(), clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 1))
    [delivery] = outbox.claim_due(MIRROR.key, 1)

    engine.record_confirmed(MIRROR.key, delivery.delivery_id, Outcome.sent())

    [after] = outbox.deliveries()
    assert after.state is DeliveryState.SENDING


def test_lone_confirmation_stored_after_the_interval(
    outbox: Outbox, clock: FakeClock
) -> None:
    def wait_past_interval(box: Outbox, delivery: Delivery) -> None:
        time.sleep(0.5)

    sender = ConfirmingSender(after_each=wait_past_interval)
    engine = make_engine(outbox, sender, clock, record_interval=0.2)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 2))
    first = min(d.delivery_id for d in outbox.deliveries())

    summary = engine.run_once()

    assert sender.mid_batch_states[0][first] is DeliveryState.SENT
    assert summary == RunSummary(batches=1, sent=2)


def test_stop_requeues_the_rest_of_the_batch(outbox: Outbox, clock: FakeClock) -> None:
    sender = ConfirmingSender()
    engine = make_engine(outbox, sender, clock)
    sender.after_each = lambda box, delivery: (
        engine.request_stop() if len(sender.mid_batch_states) == 1 else None
    )
    enqueue_exam(outbox, [MIRROR], make_exam("a", 4))

    summary = engine.run_once()

    states = sorted(d.state for d in outbox.deliveries())
    assert states == [DeliveryState.QUEUED] * 2 + [DeliveryState.SENT] * 2
    queued = [d for d in outbox.deliveries() if d.state is DeliveryState.QUEUED]
    assert all(d.error_class is None for d in queued)
    assert all(d.attempts == 0 for d in queued)
    assert all(d.next_attempt_at is not None for d in queued)
    assert summary == RunSummary(batches=1, sent=2)

    engine.resume()
    assert engine.run_once() == RunSummary(batches=1, sent=2)


class Interrupted(BaseException):
    """Raised by the test's signal handler, as Ctrl-C raises KeyboardInterrupt."""


@pytest.mark.skipif(not hasattr(signal, "setitimer"), reason="POSIX timers")
def test_interrupt_waits_for_the_image_being_sent(
    outbox: Outbox, clock: FakeClock
) -> None:
    def slow_image(box: Outbox, delivery: Delivery) -> None:
        time.sleep(0.3)

    def interrupt(signum: int, frame: object) -> None:
        raise Interrupted

    sender = ConfirmingSender(after_each=slow_image)
    engine = make_engine(outbox, sender, clock)
    enqueue_exam(outbox, [MIRROR], make_exam("a", 6))
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        # A first signal during the second image, a second one while the
        # engine waits for that image to end.
        signal.setitimer(signal.ITIMER_REAL, 0.45, 0.1)
        with pytest.raises(Interrupted):
            engine.run_once()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)

    states = [d.state for d in outbox.deliveries()]
    sent = states.count(DeliveryState.SENT)
    assert DeliveryState.SENDING not in states
    assert 1 <= sent < 6
    assert states.count(DeliveryState.QUEUED) == 6 - sent


def test_stop_ends_run_until_idle(outbox: Outbox, clock: FakeClock) -> None:
    sender = ConfirmingSender()
    engine = make_engine(outbox, sender, clock)
    sender.after_each = lambda box, delivery: engine.request_stop()
    enqueue_exam(outbox, [MIRROR], make_exam("a", 3))

    summary = engine.run_until_idle(deadline=clock() + 3600)

    assert summary.sent == 1
    assert not summary.idle
