"""Worker endings delivered only while the object that waits for them exists.

A worker may end after the dialog or pane that started it was closed and
deleted. Its signals are therefore connected to a small relay owned by that
object: Qt deletes the relay with its parent, which drops the connection, so
a late result never reaches a deleted widget.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, Slot

from eyer_desktop.gui.workers import Worker


class _Relay(QObject):
    """Calls one of two callbacks once, then deletes itself.

    The callbacks usually hold the parent. The relay drops them before it
    calls one, so its own deletion later never releases the last reference
    to its parent, which would delete the parent during the child's deletion.
    """

    def __init__(
        self,
        finished: Callable[[Any], None],
        failed: Callable[[BaseException], None],
        parent: QObject,
    ) -> None:
        super().__init__(parent)
        self._callbacks: tuple[Callable[[Any], None], Callable[[Any], None]] | None = (
            finished,
            failed,
        )

    def _take(self) -> tuple[Callable[[Any], None], Callable[[Any], None]] | None:
        callbacks, self._callbacks = self._callbacks, None
        self.deleteLater()
        return callbacks

    @Slot(object)
    def deliver_result(self, result: object) -> None:
        callbacks = self._take()
        if callbacks is not None:
            callbacks[0](result)

    @Slot(object)
    def deliver_error(self, error: object) -> None:
        callbacks = self._take()
        if callbacks is not None:
            callbacks[1](error)


def on_ending(
    worker: Worker,
    context: QObject,
    finished: Callable[[Any], None],
    failed: Callable[[BaseException], None],
) -> None:
    """Call ``finished(result)`` or ``failed(error)`` while ``context`` exists."""
    relay = _Relay(finished, failed, context)
    worker.signals.finished.connect(relay.deliver_result)
    worker.signals.failed.connect(relay.deliver_error)
