"""Workers that run core calls off the GUI thread, and the pools that run them.

A :class:`Worker` runs one Python callable on a thread pool and ends with
exactly one of two signals: ``finished(result)`` or ``failed(exception)``. The
signals live on a small QObject created on the GUI thread, so connected slots
run on the GUI thread (queued connections), never on the pool's thread.

A :class:`WorkerPool` keeps every worker it started until that ending has been
delivered, and emits ``idle`` when none is left. :class:`Pools` contains the
application's pools: one general pool and one serial lane per server.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QRunnable, QThread, QThreadPool, Signal

logger = logging.getLogger(__name__)


class WorkerCancelledError(Exception):
    """The worker was cancelled before its callable ran, or the callable stopped."""


class WorkerSignals(QObject):
    """Signals of one worker.

    Signals:
        finished: The callable returned; carries its result.
        failed: The callable raised, or the worker was cancelled before it
            started; carries the exception object.
        progress: The callable reported progress; carries the value it gave.
    """

    finished = Signal(object)
    failed = Signal(object)
    progress = Signal(object)


class WorkerControl:
    """Progress reports and the cancel flag, given to a running callable."""

    def __init__(self, signals: WorkerSignals, cancel_event: threading.Event) -> None:
        self._signals = signals
        self._cancel_event = cancel_event

    @property
    def cancelled(self) -> bool:
        """True once the worker's owner asked it to stop."""
        return self._cancel_event.is_set()

    def report_progress(self, value: object) -> None:
        """Emit ``progress(value)``, delivered on the GUI thread."""
        self._signals.progress.emit(value)

    def raise_if_cancelled(self) -> None:
        """Raise WorkerCancelledError when the owner asked the worker to stop."""
        if self.cancelled:
            raise WorkerCancelledError("The task was cancelled")


class Worker(QRunnable):
    """Run ``function(*args, **kwargs)`` once, on a pool thread.

    With ``takes_control=True`` the callable also receives a keyword argument
    ``control`` (a :class:`WorkerControl`) to report progress and to see
    whether it should stop between steps.

    Create the worker on the GUI thread: its signals object belongs to the
    thread that creates it, and that is where the slots run.
    """

    def __init__(
        self,
        function: Callable[..., Any],
        *args: Any,
        takes_control: bool = False,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__()
        # The pool must not delete the C++ object while Python still holds the
        # worker; WorkerPool drops its reference once the ending is delivered.
        self.setAutoDelete(False)
        self.signals = WorkerSignals()
        self.name = name or getattr(function, "__qualname__", repr(function))
        self._function = function
        self._args = args
        self._kwargs = kwargs
        self._takes_control = takes_control
        self._cancel_event = threading.Event()
        self._ended = False

    @property
    def cancelled(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel_event.is_set()

    def cancel(self) -> None:
        """Ask the worker to stop.

        A worker that has not started yet ends with ``failed(WorkerCancelledError)``
        without calling its callable. A running callable stops only where it
        checks its :class:`WorkerControl`.
        """
        self._cancel_event.set()

    def run(self) -> None:
        if self._ended:
            raise RuntimeError(f"Worker {self.name} was run twice")
        self._ended = True

        if self.cancelled:
            logger.debug("Worker %s cancelled before it started", self.name)
            self.signals.failed.emit(WorkerCancelledError("The task was cancelled"))
            return

        kwargs = dict(self._kwargs)
        if self._takes_control:
            kwargs["control"] = WorkerControl(self.signals, self._cancel_event)
        try:
            result = self._function(*self._args, **kwargs)
        except Exception as error:  # every failure travels to the owner
            logger.debug("Worker %s failed: %r", self.name, error)
            self.signals.failed.emit(error)
        else:
            self.signals.finished.emit(result)


def keep_threads(pool: QThreadPool) -> None:
    """Keep the pool's threads alive while the pool lives.

    Qt 6 restarts an expired pool thread in start() only after waiting for
    it to finish, and a thread that ran Python code needs the GIL to finish.
    PySide keeps the GIL during start(), so that wait can deadlock. Threads
    that never expire are never waited for.

    NOTE: this explains a hang whose call stacks showed the GUI thread inside
    QThreadPool.start and every other Python thread waiting; the hang was
    not reproduced on demand.
    """
    pool.setExpiryTimeout(-1)


class WorkerPool(QObject):
    """A QThreadPool that keeps its workers alive until their ending arrives.

    Signals:
        idle: The last started worker has delivered its ending.
    """

    idle = Signal()

    def __init__(
        self, name: str, max_threads: int, parent: QObject | None = None
    ) -> None:
        super().__init__(parent)
        self.setObjectName(name)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(max_threads)
        keep_threads(self._pool)
        self._active: set[Worker] = set()

    @property
    def max_threads(self) -> int:
        return self._pool.maxThreadCount()

    @property
    def expiry_timeout_ms(self) -> int:
        """Milliseconds an idle thread lives; -1 (see :func:`keep_threads`)."""
        return self._pool.expiryTimeout()

    def active_count(self) -> int:
        """Return the number of workers started whose ending has not arrived yet."""
        return len(self._active)

    def start(self, worker: Worker) -> Worker:
        """Queue ``worker`` on this pool and return it.

        Raises:
            RuntimeError: Called off the GUI thread, where the bookkeeping of
                active workers would race with the endings.
        """
        if QThread.currentThread() is not self.thread():
            raise RuntimeError("WorkerPool.start must be called on the GUI thread")

        self._active.add(worker)
        worker.signals.finished.connect(lambda _result: self._release(worker))
        worker.signals.failed.connect(lambda _error: self._release(worker))
        self._pool.start(worker)
        return worker

    def cancel_all(self) -> None:
        """Cancel every active worker: queued ones end without running."""
        for worker in self._active:
            worker.cancel()

    def wait_for_done(self, msecs: int = -1) -> bool:
        """Block until the pool's threads are idle; return False on timeout."""
        return self._pool.waitForDone(msecs)

    def _release(self, worker: Worker) -> None:
        self._active.discard(worker)
        if not self._active:
            self.idle.emit()


class Pools(QObject):
    """The application's worker pools.

    Signals:
        idle: No worker is active in any pool.
    """

    idle = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        # Conversion, thumbnails and server tests are independent of each other
        # and mostly CPU or I/O bound, so they share one pool sized to the CPU.
        cpu_count = max(QThread.idealThreadCount(), 1)
        self.general = self._add_pool("general", max(cpu_count, 2))
        self._lanes: dict[str, WorkerPool] = {}

    def lane(self, server_key: str) -> WorkerPool:
        """Return the serial lane of server ``server_key``, made on first use.

        One thread per server keeps a server's sends in queue order and keeps
        at most one association open to it, while servers do not wait for
        each other.
        """
        normalised = server_key.upper()
        lane = self._lanes.get(normalised)
        if lane is None:
            lane = self._add_pool(f"lane-{normalised}", 1)
            self._lanes[normalised] = lane
        return lane

    def all_pools(self) -> list[WorkerPool]:
        return [self.general, *self._lanes.values()]

    def active_count(self) -> int:
        """Return the number of active workers in every pool."""
        return sum(pool.active_count() for pool in self.all_pools())

    def cancel_all(self) -> None:
        """Cancel every active worker in every pool."""
        for pool in self.all_pools():
            pool.cancel_all()

    def shutdown(self, msecs: int = -1) -> bool:
        """Cancel queued workers and wait for running ones; False on timeout."""
        self.cancel_all()
        done = all(pool.wait_for_done(msecs) for pool in self.all_pools())
        if not done:
            logger.warning("Workers still running after %d ms at shutdown", msecs)
        return done

    def _add_pool(self, name: str, max_threads: int) -> WorkerPool:
        pool = WorkerPool(name, max_threads, self)
        pool.idle.connect(self._check_idle)
        return pool

    def _check_idle(self) -> None:
        if self.active_count() == 0:
            self.idle.emit()
