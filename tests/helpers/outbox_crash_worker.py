"""A delivery process for the crash recovery tests to kill.

Run as ``python -m tests.helpers.outbox_crash_worker MODE OUTBOX CONFIRMATIONS``
from the repository root. It delivers the outbox's queued deliveries to server
EYE001 (the primary) in batches of 3, through a sender that appends the SOP
Instance UID of each image it confirms to the CONFIRMATIONS file, synced to disk,
before it returns the outcomes.

Modes:
    hang: confirms the first batch, then prints ``mid-batch`` and waits forever
        inside the second batch.
    churn: prints ``running`` and confirms every batch after a short pause, so a
        kill at any moment can land inside a send or inside a write transaction.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from eyer_desktop.core.delivery import DeliveryEngine
from eyer_desktop.core.outbox import Delivery, Outbox, Outcome

SERVER_KEY = "EYE001"
BATCH_SIZE = 3


@dataclass(frozen=True)
class _Primary:
    key: str = SERVER_KEY
    action: str = "primary"
    is_storage: bool = True
    is_configured: bool = True


class ConfirmingSender:
    """Confirms every image, recording it on disk before reporting it sent."""

    def __init__(self, confirmations: Path, *, hang_on_batch: int | None) -> None:
        self.confirmations = confirmations
        self.hang_on_batch = hang_on_batch
        self.batches = 0

    def send(self, server_key: str, batch: Sequence[Delivery]) -> Mapping[int, Outcome]:
        self.batches += 1
        if self.batches == self.hang_on_batch:
            print("mid-batch", flush=True)
            threading.Event().wait()
        if self.hang_on_batch is None:
            threading.Event().wait(0.002)

        with self.confirmations.open("a", encoding="ascii") as log:
            for delivery in batch:
                log.write(delivery.sop_instance_uid + "\n")
            log.flush()
            os.fsync(log.fileno())
        return {delivery.delivery_id: Outcome.sent() for delivery in batch}


def main(mode: str, outbox_path: Path, confirmations: Path) -> None:
    hang_on_batch = 2 if mode == "hang" else None
    sender = ConfirmingSender(confirmations, hang_on_batch=hang_on_batch)
    with Outbox(outbox_path) as outbox:
        engine = DeliveryEngine(
            outbox, sender, servers=lambda: [_Primary()], batch_size=BATCH_SIZE
        )
        if mode == "churn":
            print("running", flush=True)
        while True:
            if engine.run_once().batches == 0:
                time.sleep(0.01)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]))
