"""Workers end with exactly one of finished/failed, delivered on the GUI thread."""

from __future__ import annotations

import threading

from PySide6.QtCore import QThread
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from eyer_desktop.gui.workers import (
    Pools,
    Worker,
    WorkerCancelledError,
    WorkerControl,
    WorkerPool,
)

WAIT_MS = 5000


class Endings:
    """Records every ending of a worker and the thread it arrived on."""

    def __init__(self, worker: Worker) -> None:
        self.finished: list[object] = []
        self.failed: list[object] = []
        self.progress: list[object] = []
        self.threads: list[QThread] = []
        worker.signals.finished.connect(self._on_finished)
        worker.signals.failed.connect(self._on_failed)
        worker.signals.progress.connect(self.progress.append)

    def _on_finished(self, result: object) -> None:
        self.threads.append(QThread.currentThread())
        self.finished.append(result)

    def _on_failed(self, error: object) -> None:
        self.threads.append(QThread.currentThread())
        self.failed.append(error)

    @property
    def count(self) -> int:
        return len(self.finished) + len(self.failed)


def run_to_end(qtbot: QtBot, pool: WorkerPool, worker: Worker) -> Endings:
    endings = Endings(worker)
    with qtbot.waitSignal(pool.idle, timeout=WAIT_MS):
        pool.start(worker)
    # A second ending, if there were one, would be queued by now.
    qtbot.wait(50)
    return endings


def test_worker_finished_once_on_gui_thread(qtbot: QtBot, pools: Pools) -> None:
    ran_on: list[QThread] = []

    def work(a: int, b: int) -> int:
        ran_on.append(QThread.currentThread())
        return a + b

    endings = run_to_end(qtbot, pools.general, Worker(work, 2, b=3))

    assert endings.finished == [5]
    assert endings.failed == []
    assert endings.threads == [gui_thread()]
    assert ran_on[0] is not gui_thread()


def test_worker_failed_carries_exception(qtbot: QtBot, pools: Pools) -> None:
    error = ValueError("bad value")

    def work() -> None:
        raise error

    endings = run_to_end(qtbot, pools.general, Worker(work))

    assert endings.failed == [error]
    assert endings.finished == []
    assert endings.threads == [gui_thread()]


def test_worker_cancelled_before_start(qtbot: QtBot, pools: Pools) -> None:
    lane = pools.lane("PAC001")
    gate = threading.Event()
    called: list[bool] = []
    blocker = Worker(gate.wait, 10)
    queued = Worker(lambda: called.append(True))
    endings = Endings(queued)

    lane.start(blocker)
    lane.start(queued)
    queued.cancel()
    with qtbot.waitSignal(lane.idle, timeout=WAIT_MS):
        gate.set()

    assert called == []
    assert endings.finished == []
    assert len(endings.failed) == 1
    assert isinstance(endings.failed[0], WorkerCancelledError)


def test_worker_progress_and_cancel_flag(qtbot: QtBot, pools: Pools) -> None:
    def work(control: WorkerControl) -> bool:
        control.report_progress(1)
        control.report_progress(2)
        return control.cancelled

    endings = run_to_end(qtbot, pools.general, Worker(work, takes_control=True))

    assert endings.progress == [1, 2]
    assert endings.finished == [False]


def test_lane_is_serial_per_server(qtbot: QtBot, pools: Pools) -> None:
    lane = pools.lane("pac001")

    assert lane is pools.lane("PAC001")
    assert lane is not pools.lane("PAC002")
    assert lane.max_threads == 1
    assert pools.general.max_threads >= 2

    order: list[int] = []
    with qtbot.waitSignal(pools.idle, timeout=WAIT_MS):
        for number in range(5):
            lane.start(Worker(order.append, number))
    assert order == [0, 1, 2, 3, 4]


def test_pools_count_active_workers(qtbot: QtBot, pools: Pools) -> None:
    gate = threading.Event()
    pools.general.start(Worker(gate.wait, 10))
    pools.lane("ABC000").start(Worker(gate.wait, 10))

    assert pools.active_count() == 2
    with qtbot.waitSignal(pools.idle, timeout=WAIT_MS):
        gate.set()
    assert pools.active_count() == 0


def gui_thread() -> QThread:
    app = QApplication.instance()
    assert app is not None
    return app.thread()


def test_pool_threads_never_expire(pools: Pools) -> None:
    assert pools.general.expiry_timeout_ms == -1
    assert pools.lane("PAC001").expiry_timeout_ms == -1
