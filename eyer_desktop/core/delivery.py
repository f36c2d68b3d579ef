"""The delivery engine, which sends the outbox's due deliveries through a sender.

Each run takes the due deliveries of every server and sends them in batches of up
to ``batch_size``, one server per worker thread of a small thread pool. Servers
are thus independent: a server that times out holds up only its own thread, and
the batches of one server go out in order. The engine records each outcome in the
outbox, and when a primary delivery fails it queues the exam for the contingency
servers.

The engine keeps no state between runs, so a GUI timer, the command line or a test
can call :meth:`DeliveryEngine.run_once` at any time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Protocol

from eyer_desktop.core import routing
from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import (
    Clock,
    Delivery,
    DeliveryState,
    Outbox,
    Outcome,
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

    def run_once(self) -> RunSummary:
        """Send every delivery that is due now and return the counts of outcomes.

        A server's deliveries are claimed and sent batch after batch until none is
        due. Deliveries that fail transiently become due later, so they wait for a
        later run.

        Raises:
            OutboxError: The outbox cannot be read or written. Deliveries that
                were claimed stay ``sending`` until the outbox is opened again.
        """
        servers = list(self.servers())
        routing.sync_server_actions(self.outbox, servers)
        keys = self.outbox.due_server_keys()
        summary = RunSummary()
        if not keys:
            return summary

        workers = min(len(keys), self.max_workers)
        with ThreadPoolExecutor(workers, thread_name_prefix="delivery") as pool:
            futures = [pool.submit(self._drain_server, key, servers) for key in keys]
            for future in futures:
                summary.add(future.result())
        return summary

    def run_until_idle(self, deadline: float) -> RunSummary:
        """Run until no delivery is queued or the deadline passes.

        Between runs the engine sleeps until the next delivery is due. Paused and
        failed deliveries do not count as queued.

        Args:
            deadline: Time on the engine's clock after which no run starts.
        """
        summary = RunSummary()
        while True:
            summary.add(self.run_once())
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
        self, server_key: str, servers: Sequence[ServerView]
    ) -> RunSummary:
        summary = RunSummary()
        while batch := self.outbox.claim_due(server_key, self.batch_size):
            summary.batches += 1
            updated, batch_error = self._send_and_record(server_key, batch, servers)
            for delivery in updated:
                summary.count(delivery)
            if batch_error is not None and batch_error.transient:
                self._postpone_rest(server_key, updated)
                break
        return summary

    def _send_and_record(
        self, server_key: str, batch: Sequence[Delivery], servers: Sequence[ServerView]
    ) -> tuple[list[Delivery], DeliveryError | None]:
        """Send one batch and record its outcomes.

        Returns:
            The updated deliveries, and the error that failed the whole batch.
        """
        exam_ids = sorted({delivery.exam_id for delivery in batch})
        logger.info(
            "Sending %d deliveries to %s (exams %s)",
            len(batch),
            server_key,
            ", ".join(exam_ids),
        )
        outcomes, batch_error = self._send(server_key, batch)
        updated = self.outbox.record_outcomes(outcomes)

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


def _status_text(code: int | None) -> str:
    """Return a status code in decimal and in the hexadecimal form DICOM uses."""
    if code is None:
        return "none"
    return f"{code} (0x{code:04X})"
