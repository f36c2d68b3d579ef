"""A scripted stand-in for the DICOM and DICOMweb senders.

The delivery engine's unit tests need faults on demand: one image rejected
transiently while the others pass, a server that reports no outcome for an
image, a sender that raises an unexpected exception, and a server that blocks
until another one has been served. No real archive can be told to do these,
so the tests use this fake. Tests against real archives use the real senders.
"""

from __future__ import annotations

import threading
from collections import defaultdict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.outbox import Delivery, Outcome

OMIT = None
"""A scripted outcome that makes the fake report nothing for the image."""


@dataclass(frozen=True)
class SentBatch:
    """One call of ``FakeSender.send``."""

    server_key: str
    deliveries: tuple[Delivery, ...]

    @property
    def image_ids(self) -> list[str]:
        return [delivery.image_id for delivery in self.deliveries]


class FakeSender:
    """A sender whose outcomes the test scripts per server and image.

    By default every image is confirmed as sent. Scripted outcomes for a
    (server, image) pair are used one per send, in order; after the last one the
    default applies again. A server-wide error makes every call to that server
    raise it until the server is healed.
    """

    def __init__(self) -> None:
        self.batches: list[SentBatch] = []
        self._lock = threading.Lock()
        self._scripts: dict[tuple[str, str], deque[Outcome | None]] = defaultdict(deque)
        self._server_errors: dict[str, BaseException] = {}
        self._gates: dict[str, threading.Event] = {}
        self._releases: dict[str, threading.Event] = {}

    def script(self, server_key: str, image_id: str, *outcomes: Outcome | None) -> None:
        """Queue outcomes for the next sends of one image to one server."""
        with self._lock:
            self._scripts[(server_key, image_id)].extend(outcomes)

    def fail_server(self, server_key: str, error: BaseException) -> None:
        """Make every send to a server raise ``error``."""
        with self._lock:
            self._server_errors[server_key] = error

    def heal_server(self, server_key: str) -> None:
        with self._lock:
            self._server_errors.pop(server_key, None)

    def hold_until(
        self, server_key: str, gate: threading.Event, *, released_by: str
    ) -> None:
        """Make sends to ``server_key`` wait until a send to ``released_by`` sets
        ``gate``, for at most 10 s."""
        with self._lock:
            self._gates[server_key] = gate
            self._releases[released_by] = gate

    def send(self, server_key: str, batch: Sequence[Delivery]) -> Mapping[int, Outcome]:
        with self._lock:
            self.batches.append(SentBatch(server_key, tuple(batch)))
            error = self._server_errors.get(server_key)
            gate = self._gates.get(server_key)
            release = self._releases.get(server_key)

        if release is not None:
            release.set()
        if gate is not None and not gate.wait(timeout=10):
            raise DeliveryError(
                f"fake gate of {server_key} never opened", transient=True
            )
        if error is not None:
            raise error
        return self._outcomes(server_key, batch)

    def _outcomes(
        self, server_key: str, batch: Sequence[Delivery]
    ) -> dict[int, Outcome]:
        outcomes = {}
        with self._lock:
            for delivery in batch:
                script = self._scripts[(server_key, delivery.image_id)]
                outcome = script.popleft() if script else Outcome.sent()
                if outcome is not None:
                    outcomes[delivery.delivery_id] = outcome
        return outcomes

    def batches_to(self, server_key: str) -> list[SentBatch]:
        return [batch for batch in self.batches if batch.server_key == server_key]

    def image_ids_sent_to(self, server_key: str) -> list[str]:
        return [
            image_id
            for batch in self.batches_to(server_key)
            for image_id in batch.image_ids
        ]
