"""Limits of a worklist query: too many entries, and a server that never ends."""

from __future__ import annotations

import shutil
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from pydicom.dataset import Dataset
from pynetdicom import AE, evt
from pynetdicom.sop_class import ModalityWorklistInformationFind  # type: ignore[attr-defined]
from pynetdicom.transport import ThreadedAssociationServer

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net import DicomEndpoint, WorklistQuery, query_worklist
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    WorklistEntry,
    free_port,
    wlmscpfs_server_fixture,
    write_worklist_file,
)

pytestmark = pytest.mark.integration

ENTRIES = 6


@pytest.fixture
def six_entries(wlmscpfs_server: DcmtkServer) -> DcmtkServer:
    """wlmscpfs serving six steps, copies of one worklist file."""
    folder = wlmscpfs_server.folder
    first = write_worklist_file(folder, "step0", WorklistEntry("SILVA^ANA"))
    for index in range(1, ENTRIES):
        shutil.copy(first, folder / f"step{index}.wl")
    return wlmscpfs_server


def endpoint_for(
    port: int, ae_title: str, dimse_timeout: float = 30.0
) -> DicomEndpoint:
    return DicomEndpoint(
        "127.0.0.1", port, "EYERDESKTOP", ae_title, dimse_timeout=dimse_timeout
    )


def test_entries_up_to_the_limit_returned(six_entries: DcmtkServer) -> None:
    endpoint = endpoint_for(six_entries.port, six_entries.ae_title)

    items = query_worklist(endpoint, WorklistQuery(dates=None), max_items=ENTRIES)

    assert len(items) == ENTRIES


def test_more_entries_than_the_limit_stop_the_query(six_entries: DcmtkServer) -> None:
    endpoint = endpoint_for(six_entries.port, six_entries.ae_title)

    with pytest.raises(DeliveryError) as caught:
        query_worklist(endpoint, WorklistQuery(dates=None), max_items=ENTRIES - 1)

    assert "more than 5 entries" in str(caught.value)
    assert "Query one day at a time" in str(caught.value)
    assert not caught.value.transient


@pytest.fixture
def endless_worklist() -> Iterator[int]:
    """A fake worklist server that sends an entry every 0.2 s and never ends.

    No real peer does this on purpose; it stands for a broken server, or one
    stuck in a loop over its database.
    """
    stop = threading.Event()

    def handle_find(event: Any) -> Iterator[tuple[int, Dataset | None]]:
        while not stop.is_set():
            entry = Dataset()
            entry.PatientName = "SILVA^ANA"
            entry.SpecificCharacterSet = "ISO_IR 100"
            time.sleep(0.2)
            yield 0xFF00, entry
        yield 0x0000, None

    ae = AE(ae_title="ENDLESS")
    ae.add_supported_context(ModalityWorklistInformationFind)
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port),
        block=False,
        evt_handlers=[(evt.EVT_C_FIND, handle_find)],
    )
    assert isinstance(server, ThreadedAssociationServer)
    try:
        yield port
    finally:
        stop.set()
        server.shutdown()


def test_endless_worklist_stopped_in_time(endless_worklist: int) -> None:
    endpoint = endpoint_for(endless_worklist, "ENDLESS", dimse_timeout=1.0)
    started = time.monotonic()

    with pytest.raises(DeliveryError) as caught:
        query_worklist(endpoint, WorklistQuery(dates=None), extra_seconds=1.0)

    elapsed = time.monotonic() - started
    assert "took longer than its DIMSE timeout plus 1 s" in str(caught.value)
    assert caught.value.transient
    assert elapsed < 10
