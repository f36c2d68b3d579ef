"""The sending service: the delivery engine driven from the GUI's worker pools.

Each server is sent to on its own serial lane (:meth:`Pools.lane`), one
:meth:`DeliveryEngine.run_server` call at a time. The engine's own
:meth:`~DeliveryEngine.run_once` also sends to servers in parallel, but it
returns only when every server is done, so a server that takes a connection
timeout would delay the next run for all the others. Driving each server
separately lets a live server's new deliveries go out while a dead one is
still timing out.

A short planning step decides which lanes to start: it applies the server
list to the outbox and reads which servers have deliveries due and when the
next one becomes due. Planning, and every user action on the outbox (retry,
cancel, pause, send now), run on one more serial lane, :data:`OUTBOX_LANE`,
so the service never makes the GUI thread wait for an SQLite write. Planning
runs when deliveries are queued, when a lane ends, and on a timer set to the
next due time (at least every :data:`POLL_INTERVAL_MS`, so deliveries queued
by the command line are picked up too).

The engine reports each server's progress on the lane's thread. The service
relays it to the GUI thread as :attr:`SendingService.progress`, every change
of phase and at most ten reports a second in between.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from PySide6.QtCore import QObject, QTimer, Signal

from eyer_desktop.core import routing
from eyer_desktop.core.delivery import (
    DeliveryEngine,
    RunSummary,
    ServerPhase,
    ServerProgress,
)
from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.outbox import Outbox
from eyer_desktop.core.routing import ServerView
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.sending import create_engine
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.workers import Pools, Worker, WorkerCancelledError, WorkerControl

logger = logging.getLogger(__name__)

OUTBOX_LANE = "outbox"
"""Name of the serial lane for planning and outbox actions. Server keys are
three letters and three digits, so no server lane has this name."""

GUI_BATCH_SIZE = 20
"""Deliveries per association. Smaller than the engine's default so that a
lane reaches the end of a batch, where it can stop, within about a second."""

POLL_INTERVAL_MS = 30_000
PROGRESS_RELAY_INTERVAL_S = 0.1
MIN_TIMER_MS = 200
FAILED_PLAN_RETRY_MS = 5_000


@dataclass(frozen=True)
class DeliveryPlan:
    """The due servers and next due time, as the planning step found them.

    Attributes:
        due_keys: Servers with deliveries due now.
        next_due_at: When the earliest queued delivery becomes due, as Unix
            time in seconds; None when nothing is queued.
    """

    due_keys: tuple[str, ...]
    next_due_at: float | None


def plan_deliveries(outbox: Outbox, servers: Sequence[ServerView]) -> DeliveryPlan:
    """Apply the server list to the outbox and return what is due."""
    routing.sync_server_actions(outbox, servers)
    return DeliveryPlan(tuple(outbox.due_server_keys()), outbox.next_due_at())


def _run_lane(
    engine: DeliveryEngine,
    server_key: str,
    stop: threading.Event,
    *,
    control: WorkerControl,
) -> RunSummary:
    def should_continue() -> bool:
        return not (stop.is_set() or control.cancelled)

    return engine.run_server(server_key, should_continue)


class SendingService(QObject):
    """Sends the outbox's deliveries on per-server lanes and runs outbox actions.

    Call :meth:`start` once the window is up. Actions report their outcome
    with :attr:`action_done` (a sentence for the status bar) or
    :attr:`action_failed` (the exception, whose message names the value and
    the fix).

    Signals:
        progress: A server's :class:`ServerProgress`, on the GUI thread.
        deliveries_changed: Deliveries were queued, changed state or were
            changed by a user action; views of the outbox should reload.
        action_done: A user action finished; carries a sentence saying what
            it did.
        action_failed: A user action or a lane failed; carries the exception.
        running_changed: The set of servers being sent to changed; carries
            the sorted keys.
    """

    progress = Signal(object)
    deliveries_changed = Signal()
    action_done = Signal(str)
    action_failed = Signal(object)
    running_changed = Signal(object)

    # Carries progress from lane threads to the GUI thread (queued connection).
    _progress_from_lane = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        pools: Pools,
        *,
        secrets: SecretStore | None = None,
        batch_size: int = GUI_BATCH_SIZE,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.workspace = workspace
        self.pools = pools
        self.engine = create_engine(
            workspace,
            secrets,
            progress=self._relay_progress,
            batch_size=batch_size,
        )
        self._progress_from_lane.connect(self._on_lane_progress)
        self._last_relayed: dict[str, tuple[ServerPhase, float]] = {}

        self._running: dict[str, Worker] = {}
        self._run_again: set[str] = set()
        self._planning = False
        self._plan_again = False
        self._started = False
        self._stopping = False
        self._stop = threading.Event()

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self.wake)

    # State

    @property
    def running_keys(self) -> list[str]:
        """Keys of the servers being sent to now, sorted."""
        return sorted(self._running)

    def is_busy(self) -> bool:
        """Return whether a lane or the planning step is running."""
        return bool(self._running) or self._planning

    def server_name(self, key: str) -> str:
        """Return a server's name, or its key when it left the server list."""
        server = self.workspace.servers.find(key)
        return key if server is None else server.name

    # Scheduling

    def start(self) -> None:
        """Start sending: plan now, then whenever deliveries may be due."""
        self._started = True
        self._stopping = False
        self._stop.clear()
        self.engine.resume()
        self.wake()

    def wake(self) -> None:
        """Look for due deliveries now and start the lanes of their servers."""
        if not self._started or self._stopping:
            return
        if self._planning:
            self._plan_again = True
            return

        self._planning = True
        self._plan_again = False
        servers = list(self.workspace.servers)
        worker = Worker(
            plan_deliveries, self.workspace.outbox, servers, name="plan deliveries"
        )
        worker.signals.finished.connect(self._on_planned)
        worker.signals.failed.connect(self._on_plan_failed)
        self.pools.lane(OUTBOX_LANE).start(worker)

    def _on_planned(self, plan: DeliveryPlan) -> None:
        self._planning = False
        if self._stopping:
            return
        for key in plan.due_keys:
            self._start_lane(key)
        if self._plan_again:
            self.wake()
            return
        self._schedule(plan.next_due_at)

    def _on_plan_failed(self, error: Exception) -> None:
        self._planning = False
        if isinstance(error, WorkerCancelledError):
            return
        logger.error("Planning deliveries failed: %s", error)
        self.action_failed.emit(error)
        if not self._stopping:
            self._timer.start(FAILED_PLAN_RETRY_MS)

    def _schedule(self, next_due_at: float | None) -> None:
        delay_ms = POLL_INTERVAL_MS
        if next_due_at is not None:
            delay_ms = int((next_due_at - time.time()) * 1000)
            delay_ms = max(MIN_TIMER_MS, min(delay_ms, POLL_INTERVAL_MS))
        self._timer.start(delay_ms)

    def _start_lane(self, key: str) -> None:
        if key in self._running:
            self._run_again.add(key)
            return
        worker = Worker(
            _run_lane,
            self.engine,
            key,
            self._stop,
            takes_control=True,
            name=f"send to {key}",
        )
        worker.signals.finished.connect(
            lambda summary, key=key: self._on_lane_finished(key, summary)
        )
        worker.signals.failed.connect(
            lambda error, key=key: self._on_lane_failed(key, error)
        )
        self._running[key] = worker
        self.running_changed.emit(self.running_keys)
        self.pools.lane(key).start(worker)

    def _on_lane_finished(self, key: str, summary: RunSummary) -> None:
        self._end_lane(key)
        if summary.batches:
            logger.debug("Lane %s ended: %s", key, summary)

    def _on_lane_failed(self, key: str, error: Exception) -> None:
        self._end_lane(key)
        if not isinstance(error, WorkerCancelledError):
            logger.error("Sending to %s stopped: %s", key, error)
            self.action_failed.emit(error)

    def _end_lane(self, key: str) -> None:
        self._running.pop(key, None)
        self.running_changed.emit(self.running_keys)
        self.deliveries_changed.emit()
        if self._stopping:
            return
        if key in self._run_again:
            self._run_again.discard(key)
            self._start_lane(key)
        self.wake()

    def _relay_progress(self, progress: ServerProgress) -> None:
        """Pass a lane's progress to the GUI thread, at most every 100 ms.

        Runs on the lane's thread. A report that changes the phase always
        goes through, so the GUI receives every start and end of a run; the reports
        of single images in between are thinned out, because each costs the
        GUI thread a slot call.
        """
        now = time.monotonic()
        last = self._last_relayed.get(progress.server_key)
        if (
            last is not None
            and last[0] is progress.phase
            and now - last[1] < PROGRESS_RELAY_INTERVAL_S
        ):
            return
        self._last_relayed[progress.server_key] = (progress.phase, now)
        self._progress_from_lane.emit(progress)

    def _on_lane_progress(self, progress: ServerProgress) -> None:
        self.progress.emit(progress)
        if progress.phase is not ServerPhase.CONVERTING:
            self.deliveries_changed.emit()

    # Closing

    def prepare_to_close(self) -> None:
        """Start no more work and let each lane stop after the image it sends.

        The rest of a batch to a DICOM server, and deliveries not claimed
        yet, stay queued for the next start. A delivery whose send is
        interrupted stays ``sending`` and goes back to the queue when the
        outbox is opened again.
        """
        self._stopping = True
        self._stop.set()
        self.engine.request_stop()
        self._timer.stop()

    def cancel_close(self) -> None:
        """Undo :meth:`prepare_to_close` when the window stays open."""
        if self._started:
            self.start()

    # User actions

    def queue_exams(self, exam_ids: Sequence[str]) -> None:
        """Queue new exams for the servers that receive new exams, and send.

        This is what an import does with the exams it creates: the primary and
        mirror servers get them, or the contingency servers when the primary
        cannot.
        """
        ids = list(exam_ids)

        def queue(outbox: Outbox, servers: Sequence[ServerView]) -> int:
            count = 0
            for exam_id in ids:
                exam = self.workspace.library.load(exam_id)
                count += routing.enqueue_exam(outbox, servers, exam)
            return count

        self._run_action(queue, lambda _count: "")

    def send_now(self, exam_ids: Sequence[str], server_key: str) -> None:
        """Queue exams for one server at the user's request, sent images too."""
        ids = list(exam_ids)
        name = self.server_name(server_key)

        def queue(outbox: Outbox, servers: Sequence[ServerView]) -> int:
            count = 0
            for exam_id in ids:
                exam = self.workspace.library.load(exam_id)
                count += routing.send_now(outbox, servers, exam, server_key)
            return count

        def message(count: int) -> str:
            return (
                self.tr("Queued for %3: %1 images of %2 selected exams")
                .replace("%1", str(count))
                .replace("%2", str(len(ids)))
                .replace("%3", name)
            )

        if not ids:
            self.action_failed.emit(
                ValidationError(
                    "Exams", None, "none selected", "Select one or more exams first"
                )
            )
            return
        self._run_action(queue, message)

    def retry(self, delivery_ids: Iterable[int]) -> None:
        """Queue failed or cancelled deliveries again."""
        ids = list(delivery_ids)
        self._run_action(
            lambda outbox, _servers: outbox.retry(ids),
            lambda count: self.tr("Deliveries queued again: %1").replace(
                "%1", str(count)
            ),
        )

    def retry_failed(self, server_key: str | None = None) -> None:
        """Queue again every failed delivery, or every failed one to a server."""
        self._run_action(
            lambda outbox, _servers: outbox.retry_failed(server_key),
            lambda count: self.tr("Failed deliveries queued again: %1").replace(
                "%1", str(count)
            ),
        )

    def retry_server_now(self, server_key: str) -> None:
        """Send a server's failed deliveries, and those waiting to retry, now.

        A paused server stays paused, and its failed deliveries then wait
        for it with the others (:meth:`Outbox.retry_now`).
        """
        name = self.server_name(server_key)
        self._run_action(
            lambda outbox, _servers: outbox.retry_now(server_key=server_key),
            lambda count: (
                self.tr("Retrying now on %1: %2 deliveries")
                .replace("%1", name)
                .replace("%2", str(count))
            ),
        )

    def cancel(self, delivery_ids: Iterable[int]) -> None:
        """Cancel queued, paused, failed or sending deliveries. A delivery being
        sent ends as cancelled, whatever the server responds.
        """
        ids = list(delivery_ids)
        self._run_action(
            lambda outbox, _servers: outbox.cancel(ids),
            lambda count: self.tr("Deliveries cancelled: %1").replace("%1", str(count)),
        )

    def pause(self, server_key: str) -> None:
        """Hold a server's queued deliveries until it is resumed."""
        name = self.server_name(server_key)
        self._run_action(
            lambda outbox, _servers: outbox.pause(server_key),
            lambda _count: self.tr("Sending to %1 paused").replace("%1", name),
        )

    def resume(self, server_key: str) -> None:
        """Release a server's deliveries held by a pause."""
        name = self.server_name(server_key)
        self._run_action(
            lambda outbox, _servers: outbox.resume(server_key),
            lambda _count: self.tr("Sending to %1 resumed").replace("%1", name),
        )

    def _run_action(
        self,
        action: Callable[[Outbox, Sequence[ServerView]], int],
        message: Callable[[int], str],
    ) -> None:
        servers = list(self.workspace.servers)
        worker = Worker(action, self.workspace.outbox, servers, name="outbox action")
        worker.signals.finished.connect(
            lambda count: self._on_action_done(message(count))
        )
        worker.signals.failed.connect(self._on_action_failed)
        self.pools.lane(OUTBOX_LANE).start(worker)

    def _on_action_done(self, text: str) -> None:
        self.deliveries_changed.emit()
        if text:
            self.action_done.emit(text)
        self.wake()

    def _on_action_failed(self, error: Exception) -> None:
        if isinstance(error, WorkerCancelledError):
            return
        logger.warning("Outbox action failed: %s", type(error).__name__)
        self.action_failed.emit(error)
