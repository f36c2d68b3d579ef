"""A fake storage SCP for faults no real peer on this machine produces.

dcmtk's storescp returns success to every C-STORE, and its
``--abort-after`` aborts at the first request. This fake, built on
pynetdicom, returns a scripted status per request (warnings B000, B006,
B007 or failures A7xx, A9xx, Cxxx) and can abort the association after a
given number of requests. Real peers cover everything else.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit
from pynetdicom import AE, evt
from pynetdicom.events import Event

from tests.helpers.dcmtk import free_port

OP_8BIT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
VERIFICATION_SOP_CLASS = "1.2.840.10008.1.1"


@dataclass
class FakeStoreScp:
    """A running fake SCP.

    Attributes:
        port: Loopback port it listens on.
        ae_title: Its AE title.
        statuses: Status returned to the n-th C-STORE request (0-based);
            requests past the end get success.
        abort_after: Number of requests processed before the fake aborts the
            association on the next one; None never aborts.
        received: SOP Instance UIDs of the requests processed, in order.
    """

    port: int
    ae_title: str
    statuses: Sequence[int] = ()
    abort_after: int | None = None
    received: list[str] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle_store(self, event: Event) -> int:
        """Return the scripted status for one C-STORE request."""
        with self._lock:
            index = len(self.received)
            if self.abort_after is not None and index >= self.abort_after:
                event.assoc.abort()
                return 0xA700
            self.received.append(str(event.request.AffectedSOPInstanceUID))
        if index < len(self.statuses):
            return self.statuses[index]
        return 0x0000


@contextmanager
def run_fake_store_scp(
    statuses: Sequence[int] = (),
    *,
    abort_after: int | None = None,
    ae_title: str = "FAKESCP",
) -> Iterator[FakeStoreScp]:
    """Run a fake SCP accepting OP images in JPEG Baseline and uncompressed."""
    scp = FakeStoreScp(free_port(), ae_title, statuses, abort_after)
    ae = AE(ae_title=ae_title)
    ae.add_supported_context(VERIFICATION_SOP_CLASS)
    ae.add_supported_context(
        OP_8BIT_IMAGE_STORAGE,
        [JPEGBaseline8Bit, ExplicitVRLittleEndian, ImplicitVRLittleEndian],
    )
    server = ae.start_server(
        ("127.0.0.1", scp.port),
        block=False,
        evt_handlers=[(evt.EVT_C_STORE, scp.handle_store)],
    )
    try:
        yield scp
    finally:
        server.shutdown()
