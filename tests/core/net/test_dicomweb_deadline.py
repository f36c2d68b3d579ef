"""The overall time limit of a DICOMweb request, against slow fake servers.

The trickling fake sends its reply one byte every half second, so no read
ever waits for the timeout, and only the request's time limit can end it.
The slow-reading fake reads the request body at 100 kB/s and then sends its
response, as a slow but working link does.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eyer_desktop.core.errors import DeliveryError
from eyer_desktop.core.net.dicomweb import (
    DicomWebClient,
    StowResult,
    request_time_limit,
)
from tests.helpers.fake_dicomweb import (
    server_ssl_context,
    write_self_signed_certificate,
)
from tests.helpers.stow_instances import instance_bytes, make_instance, write_instance
from tests.helpers.trickling_peer import (
    ENDLESS_HTTP_HEAD,
    run_slow_reading_http_server,
    run_trickling_peer,
    run_within,
)

TIMEOUT_S = 1.0
# Time allowed past the limit: thread start-up and a loaded CI machine.
SLACK_S = 3.0
# Time after which a call that should have ended counts as hanging.
HANG_S = 60.0
SLOW_READ_RATE = 100_000


def base_url(port: int, scheme: str = "http") -> str:
    return f"{scheme}://127.0.0.1:{port}/dicom-web"


def check_deadline_error(error: BaseException | None, url: str) -> DeliveryError:
    assert isinstance(error, DeliveryError)
    assert error.transient is True
    assert error.code is None
    assert url in str(error)
    assert "did not finish within" in str(error)
    assert f"twice the server's timeout of {TIMEOUT_S:g} s" in str(error)
    return error


def test_time_limit_grows_with_request() -> None:
    small = request_time_limit(30.0, 0)
    large = request_time_limit(30.0, 160_000_000)

    assert small == pytest.approx(60.0 + 65_536 / 16_000)
    assert large - small == pytest.approx(10_000.0)


def test_trickled_check_ends_at_limit() -> None:
    limit = request_time_limit(TIMEOUT_S, 0)

    with run_trickling_peer(ENDLESS_HTTP_HEAD) as peer:
        client = DicomWebClient(base_url(peer.port), timeout=TIMEOUT_S)
        finished = run_within(HANG_S, client.check)

    error = check_deadline_error(finished.error, base_url(peer.port))
    assert f"within {limit:.0f} s" in str(error)
    assert "A request of 0 bytes may take" in str(error)
    assert limit - 0.5 <= finished.elapsed <= limit + SLACK_S
    assert peer.bytes_sent > 2 * TIMEOUT_S


def test_trickled_store_ends_at_limit(tmp_path: Path) -> None:
    files = [write_instance(tmp_path, make_instance("2.25.801"))]
    size = files[0].stat().st_size
    # The multipart body adds a few hundred bytes of boundaries and headers.
    earliest = request_time_limit(TIMEOUT_S, size)
    latest = request_time_limit(TIMEOUT_S, size + 1000)

    with run_trickling_peer(ENDLESS_HTTP_HEAD) as peer:
        client = DicomWebClient(base_url(peer.port), timeout=TIMEOUT_S)
        finished = run_within(HANG_S, lambda: client.store(files))

    check_deadline_error(finished.error, base_url(peer.port))
    assert earliest - 0.5 <= finished.elapsed <= latest + SLACK_S


def test_trickled_https_reply_ends_at_limit(tmp_path: Path) -> None:
    certificate, key = write_self_signed_certificate(tmp_path / "tls")
    context = server_ssl_context(certificate, key)
    limit = request_time_limit(TIMEOUT_S, 0)

    with run_trickling_peer(ENDLESS_HTTP_HEAD, ssl_context=context) as peer:
        url = base_url(peer.port, "https")
        client = DicomWebClient(url, timeout=TIMEOUT_S, ca_file=certificate)
        finished = run_within(HANG_S, client.check)

    check_deadline_error(finished.error, url)
    assert limit - 0.5 <= finished.elapsed <= limit + SLACK_S


def test_trickled_tls_handshake_ends() -> None:
    record_header = b"\x16\x03\x03\x40\x00"

    with run_trickling_peer(record_header, filler=b"\x00") as peer:
        url = base_url(peer.port, "https")
        client = DicomWebClient(url, timeout=TIMEOUT_S)
        finished = run_within(HANG_S, client.check)

    assert isinstance(finished.error, DeliveryError)
    assert finished.error.transient is True
    assert url in str(finished.error)
    assert finished.elapsed <= request_time_limit(TIMEOUT_S, 0) + SLACK_S


def test_slow_upload_outlasts_timeout() -> None:
    instance = instance_bytes(make_instance("2.25.802", width=600, height=400))
    upload_s = len(instance) / SLOW_READ_RATE

    with run_slow_reading_http_server(SLOW_READ_RATE) as server:
        client = DicomWebClient(base_url(server.port), timeout=TIMEOUT_S)
        finished = run_within(HANG_S, lambda: client.store([instance]))

    assert finished.error is None
    assert isinstance(finished.value, StowResult)
    assert finished.value.http_status == 200
    assert upload_s > 2 * TIMEOUT_S
    assert finished.elapsed >= upload_s * 0.8
    assert server.bytes_sent > len(instance)
