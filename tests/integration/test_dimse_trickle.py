"""DICOM requests against a peer that sends one byte at a time.

Each byte arrives well within the network timeout, so only the time limit of
a whole PDU (the network timeout plus 1 s per 16 kB) ends the read. The
ACSE and DIMSE timeouts are long here, so that the PDU limit is what ends
every request. Before the association, the trickle comes from the fake peer
alone. After it, the trickle comes from a proxy in front of a real dcmtk
peer, which passes the A-ASSOCIATE-AC through and then trickles an endless
PDU.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net import (
    DicomEndpoint,
    StoreReport,
    StoreStatus,
    WorklistQuery,
    echo,
    query_worklist,
    store,
)
from eyer_desktop.core.net.association import MAX_PDU_SIZE, _TunedAssociationSocket
from eyer_desktop.core.net.deadline import transfer_seconds
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    storescp_jpeg_fixture,
    wlmscpfs_server_fixture,
)
from tests.helpers.op_samples import write_op_files
from tests.helpers.trickling_peer import (
    ENDLESS_PDU_HEADER,
    run_slow_reading_dicom_proxy,
    run_trickling_dicom_proxy,
    run_trickling_peer,
    run_within,
)

pytestmark = pytest.mark.integration

INTERVAL_S = 0.1
NETWORK_S = 1.0
LONG_S = 60.0
# Reading the 6-byte PDU header, then the body, each within its own limit.
PDU_LIMIT_S = NETWORK_S + NETWORK_S + transfer_seconds(MAX_PDU_SIZE)
# Time allowed past the limit: thread start-up, pynetdicom's reactor polling
# and a loaded CI machine.
SLACK_S = 3.0
HANG_S = 90.0


def endpoint_at(
    port: int, called_ae: str = "STORESCP", network_timeout: float = NETWORK_S
) -> DicomEndpoint:
    return DicomEndpoint(
        "127.0.0.1",
        port,
        "EYERDESKTOP",
        called_ae,
        connect_timeout=2.0,
        acse_timeout=LONG_S,
        dimse_timeout=LONG_S,
        network_timeout=network_timeout,
    )


@pytest.fixture(name="trickling_port")
def trickling_port_fixture() -> Iterator[int]:
    """A fake peer that responds to an association request with an endless PDU."""
    with run_trickling_peer(
        ENDLESS_PDU_HEADER, filler=b"\x00", interval_s=INTERVAL_S
    ) as peer:
        yield peer.port


@pytest.fixture(name="storescp_proxy_port")
def storescp_proxy_port_fixture(storescp_jpeg: DcmtkServer) -> Iterator[int]:
    with run_trickling_dicom_proxy(
        storescp_jpeg.port, whole_pdus=1, interval_s=INTERVAL_S
    ) as proxy:
        yield proxy.port


def check_slow_error(error: BaseException | None, *fragments: str) -> None:
    assert isinstance(error, DeliveryError)
    assert error.transient is True
    for fragment in fragments:
        assert fragment in str(error)
    assert f"the network timeout of {NETWORK_S:g} s plus 1 s per 16 kB" in str(error)
    # The endless PDU announces 1 MiB, more than the limit counts.
    assert f"of the first {MAX_PDU_SIZE:,} bytes" in str(error)


def test_association_answer_trickle_ends(trickling_port: int) -> None:
    finished = run_within(HANG_S, lambda: echo(endpoint_at(trickling_port)))

    check_slow_error(
        finished.error, "sent its response to the association request too slowly"
    )
    assert finished.elapsed <= PDU_LIMIT_S + SLACK_S


def test_echo_response_trickle_ends(storescp_proxy_port: int) -> None:
    finished = run_within(HANG_S, lambda: echo(endpoint_at(storescp_proxy_port)))

    check_slow_error(finished.error, "C-ECHO to", "sent its response too slowly")
    assert finished.elapsed <= PDU_LIMIT_S + SLACK_S


def test_store_response_trickle_ends(storescp_proxy_port: int, tmp_path: Path) -> None:
    files = write_op_files(tmp_path / "op", 2)

    finished = run_within(
        HANG_S, lambda: store(endpoint_at(storescp_proxy_port), files)
    )

    assert finished.error is None
    report = finished.value
    assert isinstance(report, StoreReport)
    statuses = [outcome.status for outcome in report.outcomes]
    assert statuses == [StoreStatus.NOT_SENT, StoreStatus.NOT_SENT]
    check_slow_error(report.outcomes[0].error, "sent its response too slowly")
    assert finished.elapsed <= PDU_LIMIT_S + SLACK_S


def test_worklist_response_trickle_ends(wlmscpfs_server: DcmtkServer) -> None:
    with run_trickling_dicom_proxy(
        wlmscpfs_server.port, whole_pdus=1, interval_s=INTERVAL_S
    ) as proxy:
        endpoint = endpoint_at(proxy.port, wlmscpfs_server.ae_title)
        finished = run_within(
            HANG_S, lambda: query_worklist(endpoint, WorklistQuery(modality="OP"))
        )

    check_slow_error(
        finished.error, "Worklist query to", "ended early because the server"
    )
    assert finished.elapsed <= PDU_LIMIT_S + SLACK_S


SLOW_READ_RATE = 4_000
"""Bytes a second the slow-reading proxy takes: below the 16 kB/s floor."""

SLOW_READ_NETWORK_S = 8.0
"""Network timeout against the slow reader: longer than a blocked write waits
at that rate (about 6 s), so no single write times out."""

SMALL_SEND_BUFFER = 16 * 1024


@pytest.fixture
def small_send_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    """Give association sockets a fixed 16 KiB send buffer.

    On loopback Linux grows a socket's send buffer to megabytes, and a whole
    image then fits in it: the writes never block and the DIMSE timeout ends
    the wait for the response. On a slow network the buffer stays small,
    each write blocks until the peer reads, and only the time limit of the
    whole message ends a peer that reads a little before each timeout.
    """
    open_connection = _TunedAssociationSocket._open_connection

    def with_small_buffer(
        self: _TunedAssociationSocket, address: tuple[str, int]
    ) -> socket.socket:
        sock = open_connection(self, address)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL_SEND_BUFFER)
        return sock

    monkeypatch.setattr(_TunedAssociationSocket, "_open_connection", with_small_buffer)


@pytest.mark.usefixtures("small_send_buffer")
def test_store_to_slow_reader_ends(storescp_jpeg: DcmtkServer, tmp_path: Path) -> None:
    # About 130 kB: the writes go on past the limit, not only the buffered rest.
    [path] = write_op_files(tmp_path / "op", 1, width=360, height=360, grain=8.0)
    size = path.stat().st_size
    with run_slow_reading_dicom_proxy(storescp_jpeg.port, rate=SLOW_READ_RATE) as proxy:
        endpoint = endpoint_at(proxy.port, network_timeout=SLOW_READ_NETWORK_S)
        finished = run_within(HANG_S, lambda: store(endpoint, [path]))

    assert finished.error is None
    report = finished.value
    assert isinstance(report, StoreReport)
    [outcome] = report.outcomes
    assert outcome.status is StoreStatus.NOT_SENT
    assert isinstance(outcome.error, DeliveryError)
    message = str(outcome.error)
    assert "read the request too slowly: its first " in message
    assert "check the network link to the server" in message
    limit = SLOW_READ_NETWORK_S + transfer_seconds(size)
    assert finished.elapsed <= limit + SLACK_S
    # At the proxy's rate the whole file would take longer than the limit.
    assert size / SLOW_READ_RATE > limit + SLACK_S


STEADY_RATE = 20_000
"""Bytes a second of a slow but working link: above the 16 kB/s floor."""


def test_upload_longer_than_dimse_timeout_is_stored(
    storescp_jpeg: DcmtkServer, tmp_path: Path
) -> None:
    # About 105 kB: five seconds at the steady rate, against a DIMSE timeout
    # of 2 s, which counts from the end of the upload.
    [path] = write_op_files(tmp_path / "op", 1, width=320, height=320, grain=8.0)
    upload_s = path.stat().st_size / STEADY_RATE
    with run_slow_reading_dicom_proxy(storescp_jpeg.port, rate=STEADY_RATE) as proxy:
        endpoint = DicomEndpoint(
            "127.0.0.1",
            proxy.port,
            "EYERDESKTOP",
            "STORESCP",
            dimse_timeout=2.0,
            network_timeout=10.0,
        )
        finished = run_within(HANG_S, lambda: store(endpoint, [path]))

    assert finished.error is None
    report = finished.value
    assert isinstance(report, StoreReport)
    [outcome] = report.outcomes
    assert outcome.status is StoreStatus.SENT, outcome.meaning
    assert upload_s > endpoint.dimse_timeout * 2
    assert finished.elapsed >= upload_s * 0.8
