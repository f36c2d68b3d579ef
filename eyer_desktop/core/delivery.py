"""The delivery engine, which sends the outbox's due deliveries through a sender.

Each run takes the due deliveries of every server and sends them in batches of up
to ``batch_size``, one server per worker thread of a small thread pool. Servers
are thus independent: a server that times out holds up only its own thread, and
the batches of one server go out in order. The engine records each outcome in the
outbox, and when a primary delivery fails it queues the exam for the contingency
servers.

A sender may report each image the server confirmed while the rest of its
batch is still going out (:meth:`DeliveryEngine.record_confirmed`). Those
outcomes are stored at most ``record_interval`` seconds apart, so that a
process killed in the middle of a batch re-sends little of what the server
already has.

The engine keeps no state between runs, so a GUI timer, the command line or a test
can call :meth:`DeliveryEngine.run_once` at any time. A caller that runs servers
on threads of its own calls :meth:`DeliveryEngine.run_server` for one server
instead. While a server is being sent to, the engine reports a
:class:`ServerProgress` after each step to the ``progress`` callback, on the
thread that sends.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from eyer_desktop.core import routing
from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import (
    Clock,
    Delivery,
    DeliveryState,
    Outbox,
    OutboxError,
    Outcome,
    OutcomeKind,
    Route,
)
from eyer_desktop.core.routing import ServerView

logger = logging.getLogger(__name__)


class Sender(Protocol):
    """Sends batches of images to servers, identified by server key."""

    def send(self, server_key: str, batch: Sequence[Delivery]) -> Mapping[int, Outcome]:
        """Send a batch of deliveries to one server.

        Returns:
            The outcome of each delivery, keyed by delivery id. An outcome of
            ``sent`` or ``warning`` means that the server confirmed the image. A
            delivery without an outcome counts as a transient failure.

        Raises:
            DeliveryError: The whole batch failed, for example because the
                connection was refused. Its ``transient`` flag applies to every
                delivery of the batch.
        """
        ...


@dataclass
class RunSummary:
    """Counts of the outcomes of one or more runs.

    Attributes:
        retries: Transient failures, each queued again after a delay.
        failed: Permanent failures.
        idle: Set by run_until_idle: True when no queued delivery was left.
    """

    batches: int = 0
    sent: int = 0
    warnings: int = 0
    retries: int = 0
    failed: int = 0
    idle: bool = field(default=False, compare=False)

    def add(self, other: RunSummary) -> None:
        self.batches += other.batches
        self.sent += other.sent
        self.warnings += other.warnings
        self.retries += other.retries
        self.failed += other.failed

    def count(self, delivery: Delivery) -> None:
        """Count the state a delivery reached after its outcome was recorded."""
        if delivery.state is DeliveryState.SENT:
            self.sent += 1
        elif delivery.state is DeliveryState.WARNING:
            self.warnings += 1
        elif delivery.state is DeliveryState.FAILED:
            self.failed += 1
        else:
            self.retries += 1


class ServerPhase(StrEnum):
    """Stage of the engine's work for one server."""

    CONVERTING = "converting"
    """Converting the images of the current batch to DICOM."""
    SENDING = "sending"
    """Sending the current batch, or about to claim the next one."""
    FINISHED = "finished"
    """The run of this server ended: nothing due is left, it failed, or it was
    stopped."""


@dataclass(frozen=True)
class ServerProgress:
    """Where one server's deliveries stand during a run of the engine.

    Attributes:
        done: Deliveries of this run that have an outcome. During a batch it
            also counts the images of the batch converted (CONVERTING) or
            acknowledged by the server (SENDING) so far.
        total: Deliveries that were due when the run began, or claimed in it
            if more.
        summary: Outcomes recorded in this run so far.
        last_error: Text of the last failure recorded in this run.
        retry_at: Earliest next attempt of a delivery that failed transiently
            in this run, as Unix time in seconds.
    """

    server_key: str
    phase: ServerPhase
    done: int
    total: int
    summary: RunSummary
    last_error: str | None = None
    retry_at: float | None = None


ProgressCallback = Callable[[ServerProgress], None]


@dataclass
class _ServerRun:
    """The engine's bookkeeping of one server's run, for progress reports."""

    server_key: str
    total: int
    done: int = 0
    summary: RunSummary = field(default_factory=RunSummary)
    last_error: str | None = None
    retry_at: float | None = None
    confirmed: dict[int, Outcome] = field(default_factory=dict)
    """Confirmed outcomes of the current batch, not stored yet."""
    stored_early: dict[int, Delivery | None] = field(default_factory=dict)
    """Deliveries of the current batch whose confirmed outcome is stored, with
    the delivery as updated (None when the outbox ignored the outcome)."""
    stored_at: float = 0.0
    """time.monotonic() of the last storing of confirmed outcomes."""
    batch: int = 0
    """Counter that changes at the start and the end of each batch, so that a
    timer armed in an earlier batch does nothing."""
    timer: threading.Timer | None = None
    """Stores confirmed outcomes that would otherwise wait for the next one."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    """Guards the confirmed outcomes, which the timer's thread also stores."""

    def record(self, updated: Sequence[Delivery], batch_size: int) -> None:
        self.done += batch_size
        for delivery in updated:
            self.summary.count(delivery)
            if delivery.last_error and delivery.state is not DeliveryState.WARNING:
                self.last_error = delivery.last_error
            due = delivery.next_attempt_at
            if delivery.error_class is not None and due is not None:
                self.retry_at = (
                    due if self.retry_at is None else min(self.retry_at, due)
                )

    def progress(self, phase: ServerPhase, in_batch: int = 0) -> ServerProgress:
        return ServerProgress(
            server_key=self.server_key,
            phase=phase,
            done=self.done + in_batch,
            total=self.total,
            summary=dataclasses.replace(self.summary),
            last_error=self.last_error,
            retry_at=self.retry_at,
        )


class DeliveryEngine:
    """Runs the outbox's due deliveries through a sender.

    Args:
        outbox: The queue to take deliveries from and record outcomes in.
        sender: Sends one batch to one server.
        servers: Returns the current server list; called at the start of each run.
        clock: Source of the current time; defaults to the outbox's clock.
        sleep: Waits a number of seconds; run_until_idle uses it between runs.
        batch_size: Maximum number of deliveries sent to a server in one batch.
        max_workers: Maximum number of servers sent to at the same time.
        record_interval: Seconds between two storings of the outcomes a
            sender confirms in the middle of a batch; 0 stores each at once.
        progress: Called with a :class:`ServerProgress` after each step of a
            server's run, on the thread that sends to that server. It must
            return quickly and not raise.
    """

    def __init__(
        self,
        outbox: Outbox,
        sender: Sender,
        *,
        servers: Callable[[], Sequence[ServerView]],
        clock: Clock | None = None,
        sleep: Callable[[float], None] = time.sleep,
        batch_size: int = 100,
        max_workers: int = 4,
        record_interval: float = 1.0,
        progress: ProgressCallback | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be 1 or more, not {batch_size}")
        if max_workers < 1:
            raise ValueError(f"max_workers must be 1 or more, not {max_workers}")
        self.outbox = outbox
        self.sender = sender
        self.servers = servers
        self.clock = clock or outbox.clock
        self.sleep = sleep
        self.batch_size = batch_size
        self.max_workers = max_workers
        self.record_interval = record_interval
        self.progress = progress
        self._runs: dict[str, _ServerRun] = {}
        self._runs_lock = threading.Lock()
        self._stop = threading.Event()

    def request_stop(self) -> None:
        """Stop sending: each server's run ends after the image being sent.

        The deliveries of a batch that were not sent yet go back to the
        queue, due now, without an attempt counted. Runs started later end
        at once; :meth:`resume` allows them again.
        """
        self._stop.set()

    def resume(self) -> None:
        """Allow runs again after :meth:`request_stop`."""
        self._stop.clear()

    def is_running(self) -> bool:
        """Return False once a stop was requested; senders check it per image."""
        return not self._stop.is_set()

    def run_once(self) -> RunSummary:
        """Send every delivery that is due now and return the counts of outcomes.

        A server's deliveries are claimed and sent batch after batch until none is
        due. Deliveries that fail transiently become due later, so they wait for a
        later run.

        Raises:
            OutboxBusyError: Another process is delivering from the outbox.
            OutboxError: The outbox cannot be read or written. Deliveries that
                were claimed stay ``sending`` until the outbox is opened again.
        """
        self.outbox.become_sender()
        servers = list(self.servers())
        routing.sync_server_actions(self.outbox, servers)
        keys = self.outbox.due_server_keys()
        summary = RunSummary()
        if not keys:
            return summary

        workers = min(len(keys), self.max_workers)
        pool = ThreadPoolExecutor(workers, thread_name_prefix="delivery")
        futures = [pool.submit(self._drain_server, key, servers) for key in keys]
        try:
            for future in futures:
                summary.add(future.result())
        except BaseException:
            # Ctrl-C or SIGTERM: the sending threads finish the image on the
            # wire and record it, and the caller closes the outbox only after.
            self.request_stop()
            logger.warning("Stopping: finishing the images being sent")
            _wait_through_interrupts(futures)
            raise
        finally:
            pool.shutdown(wait=True)
        return summary

    def run_server(
        self, server_key: str, should_continue: Callable[[], bool] | None = None
    ) -> RunSummary:
        """Send every delivery to one server that is due now, batch after batch.

        The server list is read and applied to the outbox first, as in
        :meth:`run_once`. Call it for different servers from different threads
        to send to them independently, but never for the same server from two
        threads at once.

        Args:
            server_key: The server to send to.
            should_continue: Called before each batch is claimed; when it
                returns False the run ends, and the deliveries not claimed yet
                stay queued.

        Raises:
            OutboxError: The outbox cannot be read or written.
        """
        self.outbox.become_sender()
        servers = list(self.servers())
        routing.sync_server_actions(self.outbox, servers)
        return self._drain_server(server_key, servers, should_continue)

    def report_batch_progress(
        self, server_key: str, phase: ServerPhase, in_batch: int
    ) -> None:
        """Report progress inside the current batch of a server.

        A sender calls this while it converts and sends, with the number of
        the batch's images done in ``phase``. Calls for a server that is not
        being run are ignored.
        """
        if self.progress is None:
            return
        with self._runs_lock:
            run = self._runs.get(server_key)
        if run is None:
            return
        try:
            self.progress(run.progress(phase, in_batch))
        except Exception:
            logger.exception("Progress callback failed for server %s", server_key)

    def record_confirmed(
        self, server_key: str, delivery_id: int, outcome: Outcome
    ) -> None:
        """Note that the server confirmed one delivery of the batch being sent.

        A sender calls this on the sending thread, as soon as the server
        confirms an image, with a ``sent`` or ``warning`` outcome. The
        outcome is stored with the others that have come in once
        ``record_interval`` has passed since the last storing, or else at
        the end of the batch. The sender still returns it with the batch's
        outcomes. Calls for a server that is not being run, and failure
        outcomes, are ignored.
        """
        if outcome.kind is OutcomeKind.FAILED:
            return
        with self._runs_lock:
            run = self._runs.get(server_key)
        if run is None:
            return
        with run.lock:
            run.confirmed[delivery_id] = outcome
            wait = run.stored_at + self.record_interval - time.monotonic()
            if wait <= 0:
                self._store_confirmed(run)
            elif run.timer is None:
                run.timer = threading.Timer(
                    wait, self._store_on_timer, args=(run, run.batch)
                )
                run.timer.daemon = True
                run.timer.start()

    def _store_on_timer(self, run: _ServerRun, batch: int) -> None:
        with run.lock:
            if run.batch != batch:
                return
            run.timer = None
            self._store_confirmed(run)

    def _store_confirmed(self, run: _ServerRun) -> None:
        """Store the confirmed outcomes that wait; the caller holds run.lock."""
        pending, run.confirmed = run.confirmed, {}
        run.stored_at = time.monotonic()
        if not pending:
            return
        try:
            updated = self.outbox.record_outcomes(pending)
        except OutboxError as err:
            # The batch's end stores them with the rest.
            logger.warning(
                "Storing %d confirmed deliveries to %s early failed: %s",
                len(pending),
                run.server_key,
                err,
            )
            return
        by_id = {delivery.delivery_id: delivery for delivery in updated}
        for delivery_id in pending:
            run.stored_early[delivery_id] = by_id.get(delivery_id)

    def run_until_idle(self, deadline: float) -> RunSummary:
        """Run until no delivery is queued or the deadline passes.

        Between runs the engine sleeps until the next delivery is due. Paused and
        failed deliveries do not count as queued. A stop request ends it after
        the current run.

        Args:
            deadline: Time on the engine's clock after which no run starts.
        """
        summary = RunSummary()
        while True:
            summary.add(self.run_once())
            if not self.is_running():
                return summary
            next_due = self.outbox.next_due_at()
            if next_due is None:
                summary.idle = True
                return summary

            now = self.clock()
            if next_due > deadline or now >= deadline:
                return summary
            if next_due > now:
                self.sleep(next_due - now)

    def _drain_server(
        self,
        server_key: str,
        servers: Sequence[ServerView],
        should_continue: Callable[[], bool] | None = None,
    ) -> RunSummary:
        run = self._start_run(server_key)
        try:
            while self.is_running() and (should_continue is None or should_continue()):
                batch = self.outbox.claim_due(server_key, self.batch_size)
                if not batch:
                    break
                run.summary.batches += 1
                run.total = max(run.total, run.done + len(batch))
                self._report(run, ServerPhase.CONVERTING)
                updated, batch_error = self._send_and_record(run, batch, servers)
                run.record(updated, len(batch))
                self._report(run, ServerPhase.SENDING)
                if batch_error is not None and batch_error.transient:
                    self._postpone_rest(server_key, updated)
                    break
        finally:
            with self._runs_lock:
                self._runs.pop(server_key, None)
            self._report(run, ServerPhase.FINISHED)
        return run.summary

    def _start_run(self, server_key: str) -> _ServerRun:
        total = 0
        if self.progress is not None:
            now = self.clock()
            queued = self.outbox.deliveries(
                server_key=server_key, states=[DeliveryState.QUEUED]
            )
            total = sum(
                d.next_attempt_at is not None and d.next_attempt_at <= now
                for d in queued
            )
        run = _ServerRun(server_key, total)
        with self._runs_lock:
            self._runs[server_key] = run
        return run

    def _report(self, run: _ServerRun, phase: ServerPhase) -> None:
        if self.progress is None:
            return
        # A failing progress callback must not leave claimed deliveries in the
        # sending state, so its error is logged and the run goes on.
        try:
            self.progress(run.progress(phase))
        except Exception:
            logger.exception("Progress callback failed for server %s", run.server_key)

    def _send_and_record(
        self, run: _ServerRun, batch: Sequence[Delivery], servers: Sequence[ServerView]
    ) -> tuple[list[Delivery], DeliveryError | None]:
        """Send one batch and record its outcomes.

        Returns:
            The updated deliveries, and the error that failed the whole batch.
        """
        server_key = run.server_key
        exam_ids = sorted({delivery.exam_id for delivery in batch})
        logger.info(
            "Sending %d deliveries to %s (exams %s)",
            len(batch),
            server_key,
            ", ".join(exam_ids),
        )
        with run.lock:
            run.batch += 1
            run.confirmed, run.stored_early = {}, {}
            run.stored_at = time.monotonic()
        try:
            outcomes, batch_error = self._send(server_key, batch)
        finally:
            with run.lock:
                run.batch += 1
                if run.timer is not None:
                    run.timer.cancel()
                    run.timer = None
                stored_early, run.stored_early, run.confirmed = (
                    run.stored_early,
                    {},
                    {},
                )
        unsent = [d.delivery_id for d in batch if d.delivery_id not in outcomes]
        if unsent:
            released = self.outbox.release(unsent)
            logger.info(
                "Sending to %s stopped; %d deliveries queued again",
                server_key,
                released,
            )
        # Deliveries stored early are no longer being sent, so the outbox
        # would ignore, and log, their outcome a second time.
        rest = {
            delivery_id: outcome
            for delivery_id, outcome in outcomes.items()
            if delivery_id not in stored_early
        }
        updated = [d for d in stored_early.values() if d is not None]
        updated += self.outbox.record_outcomes(rest)

        failed_primary = set()
        for delivery in updated:
            if batch_error is None:
                self._log_outcome(delivery)
            if delivery.route is Route.PRIMARY and delivery.error_class is not None:
                failed_primary.add(delivery.exam_id)
        if failed_primary:
            routing.enqueue_contingency(self.outbox, servers, sorted(failed_primary))
        return updated, batch_error

    def _send(
        self, server_key: str, batch: Sequence[Delivery]
    ) -> tuple[dict[int, Outcome], DeliveryError | None]:
        """Return an outcome for every delivery of the batch, and the batch error."""
        try:
            reported = self.sender.send(server_key, batch)
        except DeliveryError as err:
            kind = "transient" if err.transient else "permanent"
            logger.error(
                "Sending %d deliveries to %s failed (%s): %s",
                len(batch),
                server_key,
                kind,
                err,
            )
            outcome = Outcome.from_error(err)
            return {delivery.delivery_id: outcome for delivery in batch}, err
        except Exception as err:
            # A bug in a sender must not leave the batch marked as being sent until
            # the next start, so it counts as a transient failure of every delivery.
            logger.exception("Sender failed on a batch to %s", server_key)
            outcome = Outcome.failed(
                f"internal error in the sender: {err!r}", transient=True
            )
            return {delivery.delivery_id: outcome for delivery in batch}, None

        outcomes = {}
        for delivery in batch:
            found = reported.get(delivery.delivery_id)
            if found is None and not self.is_running():
                continue  # Not sent because of the stop: released by the caller.
            if found is None:
                logger.error(
                    "Sender reported no outcome for delivery %d to %s",
                    delivery.delivery_id,
                    server_key,
                )
                found = Outcome.failed("the sender reported no outcome", transient=True)
            outcomes[delivery.delivery_id] = found
        return outcomes, None

    def _postpone_rest(self, server_key: str, failed: Sequence[Delivery]) -> None:
        """Make the server's other due deliveries wait as long as the failed batch."""
        retry_times = [
            delivery.next_attempt_at
            for delivery in failed
            if delivery.next_attempt_at is not None
        ]
        if not retry_times:
            return
        until = min(retry_times)
        postponed = self.outbox.postpone_due(server_key, until)
        if postponed:
            logger.info(
                "Postponed %d other deliveries to %s by %.0f s, with the failed batch",
                postponed,
                server_key,
                until - self.clock(),
            )

    def _log_outcome(self, delivery: Delivery) -> None:
        ids = (delivery.delivery_id, delivery.exam_id, delivery.image_id)
        if delivery.state is DeliveryState.SENT:
            logger.debug("Delivery %d (exam %s, image %s) sent", *ids)
        elif delivery.state is DeliveryState.WARNING:
            logger.warning(
                "Delivery %d (exam %s, image %s) to %s sent with warning %s: %s",
                *ids,
                delivery.server_key,
                _status_text(delivery.status_code),
                delivery.last_error,
            )
        elif delivery.state is DeliveryState.FAILED:
            logger.error(
                "Delivery %d (exam %s, image %s) to %s failed permanently "
                "(status %s): %s",
                *ids,
                delivery.server_key,
                _status_text(delivery.status_code),
                delivery.last_error,
            )
        else:
            delay = (delivery.next_attempt_at or 0.0) - self.clock()
            logger.info(
                "Delivery %d (exam %s, image %s) to %s failed on attempt %d, "
                "next attempt in %.0f s: %s",
                *ids,
                delivery.server_key,
                delivery.attempts,
                max(delay, 0.0),
                delivery.last_error,
            )


def _wait_through_interrupts(futures: Sequence[Future[RunSummary]]) -> None:
    """Wait until every future is done, whatever Ctrl-C or SIGTERM arrives.

    The wait is bounded: a sending thread that was asked to stop ends after
    the image on the wire, and network time limits bound that image.
    """
    while True:
        try:
            wait(futures)
            return
        except BaseException:
            logger.warning("Still finishing the images being sent")


def _status_text(code: int | None) -> str:
    """Return a status code in decimal and in the hexadecimal form DICOM uses."""
    if code is None:
        return "none"
    return f"{code} (0x{code:04X})"
