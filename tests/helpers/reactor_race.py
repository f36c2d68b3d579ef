"""Make pynetdicom's reactor thread take a C-STORE response, as it sometimes does.

On an association that this application requests, pynetdicom 3.0.4 runs a
reactor thread that polls the DIMSE message queue whenever it is not paused.
``send_c_store`` pauses it by clearing a checkpoint event and then waiting
until the reactor's ``_is_paused`` flag is true. The reactor sets that flag
just before it waits on the checkpoint, so when it passes the checkpoint
just before the clear, the sender reads a stale flag and sends while the
reactor goes on to poll the queue. If the response arrives then, the reactor
takes it, logs "Received unexpected C-STORE service message", and
``send_c_store`` waits until the DIMSE timeout and aborts the association.
Sending 3000 small images to storescp on loopback hit this twice.

:func:`reactor_waits_for_responses` makes the race certain: after passing
the checkpoint, the reactor waits for the next message to arrive before it
polls, as a reactor thread that lost the interpreter lock at that point
would. No real peer can choose the scheduling of the sender's threads.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from pynetdicom.association import Association

MESSAGE_WAIT_S = 0.2
"""How long the reactor waits for a message after passing the checkpoint."""


class _SlowCheckpoint(threading.Event):
    """The reactor's checkpoint, which holds the reactor until a message arrives."""

    def __init__(self, association: Association) -> None:
        super().__init__()
        self.association = association

    def wait(self, timeout: float | None = None) -> bool:
        passed = super().wait(timeout)
        messages = self.association.dimse.msg_queue
        # qsize() would take the queue's lock again, which not_empty holds.
        with messages.not_empty:
            if not messages._qsize():
                messages.not_empty.wait(MESSAGE_WAIT_S)
        return passed


@contextmanager
def reactor_waits_for_responses() -> Iterator[None]:
    """Give every association created inside the block the slow checkpoint."""
    original_init = Association.__init__

    def init(association: Association, *args: Any, **kwargs: Any) -> None:
        original_init(association, *args, **kwargs)
        association._reactor_checkpoint = _SlowCheckpoint(association)
        association._reactor_checkpoint.set()

    Association.__init__ = init  # type: ignore[method-assign]
    try:
        yield
    finally:
        Association.__init__ = original_init  # type: ignore[method-assign]
