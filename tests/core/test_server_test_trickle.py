"""The connection test against a server that responds one byte at a time.

The "Reachable" step passes, because the fake accepts connections. The next
step must fail within the time limit of its request instead of waiting for
the rest of a response that never ends.
"""

from __future__ import annotations

from eyer_desktop.core.net.association import MAX_PDU_SIZE
from eyer_desktop.core.net.deadline import transfer_seconds
from eyer_desktop.core.net.dicomweb import request_time_limit
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomTimeouts,
    DicomWebSettings,
    DicomWorklistSettings,
)
from eyer_desktop.core.server_test import ServerTestReport
from eyer_desktop.core.server_test import test_server as run_server_test
from eyer_desktop.core.servers import Server, ServerAction
from tests.helpers.trickling_peer import (
    ENDLESS_HTTP_HEAD,
    ENDLESS_PDU_HEADER,
    run_trickling_peer,
    run_within,
)

INTERVAL_S = 0.1
NETWORK_S = 1.0
TIMEOUTS = DicomTimeouts(connect=2.0, acse=60.0, dimse=60.0, network=NETWORK_S)
# Reading the 6-byte PDU header, then the body, each within its own limit.
PDU_LIMIT_S = 2 * NETWORK_S + transfer_seconds(MAX_PDU_SIZE)
SLACK_S = 3.0
HANG_S = 90.0


def run_test_within(server: Server) -> tuple[ServerTestReport, float]:
    finished = run_within(HANG_S, lambda: run_server_test(server))
    assert finished.error is None
    assert isinstance(finished.value, ServerTestReport)
    return finished.value, finished.elapsed


def test_storage_test_ends_on_trickle() -> None:
    with run_trickling_peer(
        ENDLESS_PDU_HEADER, filler=b"\x00", interval_s=INTERVAL_S
    ) as peer:
        settings = DicomStorageSettings(
            called_ae="STORESCP", host="127.0.0.1", port=peer.port, timeouts=TIMEOUTS
        )
        server = Server(
            key="ARQ001", name="Arquivo", action=ServerAction.MIRROR, settings=settings
        )
        report, elapsed = run_test_within(server)

    assert [step.name for step in report.steps] == [
        "Reachable",
        "Association accepted",
    ]
    assert report.steps[0].ok
    assert not report.steps[1].ok
    assert (
        "sent its response to the association request too slowly"
        in report.steps[1].detail
    )
    assert elapsed <= PDU_LIMIT_S + SLACK_S


def test_worklist_test_ends_on_trickle() -> None:
    with run_trickling_peer(
        ENDLESS_PDU_HEADER, filler=b"\x00", interval_s=INTERVAL_S
    ) as peer:
        settings = DicomWorklistSettings(
            called_ae="WLMSCP", host="127.0.0.1", port=peer.port, timeouts=TIMEOUTS
        )
        server = Server(
            key="WLM001", name="Agenda", action=ServerAction.MIRROR, settings=settings
        )
        report, elapsed = run_test_within(server)

    assert not report.ok
    assert "too slowly" in report.summary()
    assert elapsed <= PDU_LIMIT_S + SLACK_S


def test_dicomweb_test_ends_on_trickle() -> None:
    timeout = 1.0
    with run_trickling_peer(ENDLESS_HTTP_HEAD) as peer:
        url = f"http://127.0.0.1:{peer.port}/dicom-web"
        settings = DicomWebSettings(base_url=url, timeout=timeout)
        server = Server(
            key="WEB001", name="Nuvem", action=ServerAction.MIRROR, settings=settings
        )
        report, elapsed = run_test_within(server)

    assert [step.name for step in report.steps] == [
        "Reachable",
        "Credentials accepted",
    ]
    assert report.steps[0].ok
    assert not report.steps[1].ok
    assert "did not finish within" in report.steps[1].detail
    assert elapsed <= request_time_limit(timeout, 0) + SLACK_S
