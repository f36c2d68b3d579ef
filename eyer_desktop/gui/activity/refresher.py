"""Keeping the Activity models in step with the outbox, cheaply.

A change notice (from the sending service or a user action) starts a short
timer, so a burst of notices makes one load. Loads run one at a time on a
worker and read only the deliveries changed since the previous load.
Once nothing has changed for a while, the refresher compares the model's
per-server state counts with the outbox's after a load. They differ when rows
were deleted (a purge) or a change was missed, and then a full load follows,
at most once every :data:`FULL_LOAD_MIN_INTERVAL_MS`. The page also asks for
a load every few seconds while it is shown, which picks up changes made by
another process, such as the command line. While the page is hidden, notices only
mark the models stale, and showing the page loads.
"""

from __future__ import annotations

import logging
import time

from PySide6.QtCore import QObject, QThreadPool, QTimer, Signal

from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.workspace import Workspace
from eyer_desktop.gui.activity.loader import (
    LOOKBACK_S,
    ActivityLoader,
    ActivitySnapshot,
)
from eyer_desktop.gui.activity.model import ActivityModel
from eyer_desktop.gui.activity.servers_model import ServerStatusModel
from eyer_desktop.gui.workers import Worker, WorkerCancelledError, keep_threads

logger = logging.getLogger(__name__)

COALESCE_MS = 500
FULL_LOAD_MIN_INTERVAL_MS = 5_000


def _nonzero(
    counts: dict[str, dict[DeliveryState, int]],
) -> dict[str, dict[DeliveryState, int]]:
    return {
        key.upper(): {state: n for state, n in per_state.items() if n}
        for key, per_state in counts.items()
        if any(per_state.values())
    }


class ActivityRefresher(QObject):
    """Loads outbox snapshots on a worker and applies them to the models.

    Signals:
        loaded: A snapshot was applied; carries it.
        failed: A load failed; carries the exception.
    """

    loaded = Signal(object)
    failed = Signal(object)

    def __init__(
        self,
        workspace: Workspace,
        deliveries: ActivityModel,
        servers: ServerStatusModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        # Loads only read and can be dropped at any time, so they run on a
        # serial pool of their own, which closing the window does not ask
        # about, unlike the application's pools. The pool is a child of the
        # refresher: deleting it waits for a running load, and the ending of
        # that load, connected to the refresher's methods, is then dropped.
        self.pool = QThreadPool(self)
        self.pool.setMaxThreadCount(1)
        keep_threads(self.pool)
        self._worker: Worker | None = None
        self.deliveries = deliveries
        self.servers = servers
        self._loader = ActivityLoader(workspace.outbox, workspace.library)
        self._since: float | None = None
        self._load_again = False
        self._active = False
        self._stale = True
        self._last_full = 0.0
        self.loads = 0
        """Loads applied so far, full and incremental."""

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.timeout.connect(self._load)

    def set_active(self, active: bool) -> None:
        """Load while active (the page is shown); only note changes otherwise."""
        self._active = active
        if active and self._stale:
            self.request()

    def request(self) -> None:
        """Load the changes soon; many requests in a short time make one load."""
        self._stale = True
        if self._active and not self._timer.isActive():
            self._timer.start(COALESCE_MS)

    def reload_all(self) -> None:
        """Load every delivery again, at the next load."""
        self._since = None
        self.request()

    def _load(self) -> None:
        if self._worker is not None:
            self._load_again = True
            return
        self._load_again = False
        self._stale = False
        worker = Worker(self._loader.load, self._since, name="load activity")
        worker.signals.finished.connect(self._on_loaded)
        worker.signals.failed.connect(self._on_failed)
        self._worker = worker
        self.pool.start(worker)

    def _on_loaded(self, snapshot: ActivitySnapshot) -> None:
        self._worker = None
        self.loads += 1
        self.deliveries.apply(snapshot)
        self.servers.set_summaries(snapshot.servers)
        self._since = snapshot.newest_update
        if snapshot.full:
            self._last_full = time.monotonic()
        elif self._is_quiet(snapshot) and self._counts_differ(snapshot):
            self._schedule_full_load()
        self.loaded.emit(snapshot)
        if self._load_again or (self._stale and self._active):
            self.request()

    def _on_failed(self, error: Exception) -> None:
        self._worker = None
        if isinstance(error, WorkerCancelledError):
            return
        logger.error("Loading the activity failed: %s", error)
        self.failed.emit(error)

    @staticmethod
    def _is_quiet(snapshot: ActivitySnapshot) -> bool:
        """Return whether nothing changed lately, so the counts are stable.

        While deliveries change, the counts (read after the rows) differ from
        the rows now and then without anything being missed.
        """
        newest = snapshot.newest_update
        return newest is None or time.time() - newest > LOOKBACK_S

    def _counts_differ(self, snapshot: ActivitySnapshot) -> bool:
        outbox_counts = {
            key: dict(summary.counts) for key, summary in snapshot.servers.items()
        }
        return _nonzero(self.deliveries.counts()) != _nonzero(outbox_counts)

    def _schedule_full_load(self) -> None:
        self._since = None
        elapsed_ms = (time.monotonic() - self._last_full) * 1000
        wait_ms = max(COALESCE_MS, int(FULL_LOAD_MIN_INTERVAL_MS - elapsed_ms))
        logger.debug(
            "Activity counts differ from the outbox; full load in %d ms", wait_ms
        )
        self._stale = True
        if self._active:
            self._timer.start(wait_ms)
