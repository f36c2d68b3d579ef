"""C-ECHO, connection faults and DICOM TLS against real loopback peers."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net import DicomEndpoint, TlsSettings, echo, store
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    run_storescp,
    run_wlmscpfs,
    storescp_jpeg_fixture,
)
from tests.helpers.op_samples import write_op_files
from tests.helpers.rejections import rejection_of
from tests.helpers.tls_certs import TestPki, make_test_pki

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.5
# Time allowed past a configured timeout: thread start-up, pynetdicom's
# reactor polling and a loaded CI machine.
TIMEOUT_SLACK_S = 2.0


def endpoint_at(
    port: int, called_ae: str = "STORESCP", **options: object
) -> DicomEndpoint:
    return DicomEndpoint("127.0.0.1", port, "EYERDESKTOP", called_ae, **options)  # type: ignore[arg-type]


def test_echo_returns_round_trip(storescp_jpeg: DcmtkServer) -> None:
    round_trip = echo(endpoint_at(storescp_jpeg.port))

    assert 0 < round_trip < 5


def test_echo_closed_port_is_transient() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]

    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        echo(endpoint_at(port, connect_timeout=TIMEOUT_S))

    assert time.monotonic() - started < TIMEOUT_S + TIMEOUT_SLACK_S
    assert caught.value.transient is True
    assert "refused" in str(caught.value)


@pytest.fixture(name="full_backlog_port")
def full_backlog_port_fixture() -> Iterator[int]:
    """A listening socket that never accepts, its backlog filled up.

    Linux drops further SYNs to a full accept queue, so a new connection
    neither succeeds nor is refused: like an unroutable address, on loopback.
    """
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(4):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex(("127.0.0.1", port))
        fillers.append(filler)
    time.sleep(0.2)
    try:
        yield port
    finally:
        for filler in fillers:
            filler.close()
        listener.close()


def test_echo_connect_timeout_on_full_backlog(full_backlog_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(DeliveryError) as caught:
        echo(endpoint_at(full_backlog_port, connect_timeout=TIMEOUT_S))
    elapsed = time.monotonic() - started

    assert elapsed >= TIMEOUT_S * 0.9
    assert elapsed < TIMEOUT_S + TIMEOUT_SLACK_S
    assert caught.value.transient is True
    assert "timed out after 1.5 s" in str(caught.value)


def test_echo_acse_timeout_on_silent_peer() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]

        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            echo(endpoint_at(port, acse_timeout=TIMEOUT_S))
        elapsed = time.monotonic() - started

    assert elapsed < TIMEOUT_S + TIMEOUT_SLACK_S
    assert caught.value.transient is True
    assert "did not respond to the association request within 1.5 s" in str(
        caught.value
    )


def test_echo_unknown_called_ae_is_permanent(tmp_path: Path) -> None:
    with run_wlmscpfs(tmp_path / "worklists", ae_title="WLMSCP") as server:
        error = rejection_of(
            lambda: echo(endpoint_at(server.port, called_ae="WRONGAET"))
        )
        round_trip = echo(endpoint_at(server.port, called_ae="WLMSCP"))

    assert error.transient is False
    assert "'WRONGAET'" in str(error)
    assert "Called AE title not recognised" in str(error)
    assert round_trip > 0


def test_echo_refused_association_is_permanent(tmp_path: Path) -> None:
    with run_storescp(
        tmp_path / "refusing", accept_jpeg=True, extra_arguments=["--refuse"]
    ) as server:
        error = rejection_of(lambda: echo(endpoint_at(server.port)))

    assert error.transient is False
    assert "rejected the association" in str(error)


@pytest.fixture(name="pki", scope="module")
def pki_fixture(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return make_test_pki(tmp_path_factory.mktemp("pki"))


def tls_storescp_arguments(pki: TestPki, *, wrong_host: bool = False) -> list[str]:
    server = pki.server_wrong_host if wrong_host else pki.server
    return [
        "+tls", str(server.key), str(server.cert),
        "--null-passwd",
        "+cf", str(pki.ca.cert),
    ]  # fmt: skip


def test_tls_store_with_client_certificate(pki: TestPki, tmp_path: Path) -> None:
    sources = write_op_files(tmp_path / "sources", 2)
    tls = TlsSettings(
        ca_file=pki.ca.cert, cert_file=pki.client.cert, key_file=pki.client.key
    )
    with run_storescp(
        tmp_path / "tls", accept_jpeg=True, extra_arguments=tls_storescp_arguments(pki)
    ) as server:
        round_trip = echo(endpoint_at(server.port, tls=tls))
        report = store(endpoint_at(server.port, tls=tls), sources)
        received = server.received_files()

    assert round_trip > 0
    assert report.all_stored
    assert len(received) == 2


def test_tls_unknown_authority_is_permanent(pki: TestPki, tmp_path: Path) -> None:
    tls = TlsSettings(
        ca_file=pki.other_ca.cert, cert_file=pki.client.cert, key_file=pki.client.key
    )
    with (
        run_storescp(
            tmp_path / "tls",
            accept_jpeg=True,
            extra_arguments=tls_storescp_arguments(pki),
        ) as server,
        pytest.raises(DeliveryError) as caught,
    ):
        echo(endpoint_at(server.port, tls=tls, connect_timeout=TIMEOUT_S))

    assert caught.value.transient is False
    assert "certificate" in str(caught.value)


def test_tls_host_name_mismatch_is_permanent(pki: TestPki, tmp_path: Path) -> None:
    tls = TlsSettings(
        ca_file=pki.ca.cert, cert_file=pki.client.cert, key_file=pki.client.key
    )
    arguments = tls_storescp_arguments(pki, wrong_host=True)
    with run_storescp(
        tmp_path / "tls", accept_jpeg=True, extra_arguments=arguments
    ) as server:
        with pytest.raises(DeliveryError) as caught:
            echo(endpoint_at(server.port, tls=tls))
        unverified = TlsSettings(
            cert_file=pki.client.cert, key_file=pki.client.key, verify=False
        )
        round_trip = echo(endpoint_at(server.port, tls=unverified))

    assert caught.value.transient is False
    assert "127.0.0.1" in str(caught.value)
    assert round_trip > 0


def test_tls_missing_client_certificate_explained(pki: TestPki, tmp_path: Path) -> None:
    tls = TlsSettings(ca_file=pki.ca.cert)
    with (
        run_storescp(
            tmp_path / "tls",
            accept_jpeg=True,
            extra_arguments=tls_storescp_arguments(pki),
        ) as server,
        pytest.raises(DeliveryError) as caught,
    ):
        echo(endpoint_at(server.port, tls=tls, acse_timeout=TIMEOUT_S))

    assert "certificate" in str(caught.value)


def test_tls_missing_ca_file_is_permanent(
    storescp_jpeg: DcmtkServer, tmp_path: Path
) -> None:
    tls = TlsSettings(ca_file=tmp_path / "missing.pem")

    with pytest.raises(DeliveryError) as caught:
        echo(endpoint_at(storescp_jpeg.port, tls=tls))

    assert caught.value.transient is False
    assert "missing.pem" in str(caught.value)
    assert "file not found" in str(caught.value)
