"""send EXAM tries the exam's waiting and failed deliveries again at once.

A server that is down is a free loopback port where nothing listens, so the
first send is refused and its deliveries wait out a retry delay. The server
then comes up as dcmtk's storescp on that same port, and a second send must
deliver without 'outbox retry-now'.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.paths import AppPaths
from tests.cli.conftest import RunCli
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    free_port,
    storescp_jpeg_fixture,
    wlmscpfs_server_fixture,
)
from tests.helpers.delivery_profile import (  # noqa: F401
    add_storage_server,
    copy_samples,
    outbox_rows,
    sample_library_fixture,
    states_of,
)
from tests.helpers.storescp_on_port import run_storescp_on_port

pytestmark = pytest.mark.integration

DUE_NOW = "2 deliveries that waited to retry or had failed are due now"


@pytest.fixture(name="exams")
def exams_fixture(isolated_profile: AppPaths, sample_library: Path) -> list[Exam]:
    """The color and red-free sample exams, two images each."""
    return copy_samples(isolated_profile, sample_library)[:2]


def refused_send(run_cli: RunCli, exam: Exam, *options: str) -> None:
    result = run_cli("send", exam.exam_id, *options)
    assert result.code == 1, result.err
    assert "was refused" in result.out
    assert "retry at" in result.out


@pytest.mark.parametrize("action", ["mirror", "manual"])
def test_send_retries_waiting_deliveries(
    run_cli: RunCli, exams: list[Exam], tmp_path: Path, action: str
) -> None:
    port = free_port()
    key = add_storage_server(run_cli, "Arquivo", port, action=action)
    options = ("--to", key) if action == "manual" else ()
    refused_send(run_cli, exams[0], *options)

    with run_storescp_on_port(port, tmp_path / "received") as storescp:
        result = run_cli("send", exams[0].exam_id, *options)

        assert result.code == 0, result.out
        assert DUE_NOW in result.out
        assert "2 sent, 0 with warnings, 0 to retry, 0 failed" in result.out
        assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]
        assert len(storescp.received_files()) == 2


def test_send_retries_failed_deliveries(
    run_cli: RunCli,
    exams: list[Exam],
    wlmscpfs_server: DcmtkServer,
    storescp_jpeg: DcmtkServer,
) -> None:
    # wlmscpfs rejects an association that proposes only storage SOP classes,
    # which is a permanent failure from a real peer.
    key = add_storage_server(
        run_cli, "Arquivo", wlmscpfs_server.port, aet=wlmscpfs_server.ae_title
    )
    first = run_cli("send", exams[0].exam_id)
    assert first.code == 1
    assert states_of(outbox_rows(run_cli), key) == ["failed", "failed"]
    edited = run_cli("servers", "edit", key, "--port", str(storescp_jpeg.port))
    assert edited.code == 0, edited.err

    result = run_cli("send", exams[0].exam_id)

    assert result.code == 0, result.out
    assert DUE_NOW in result.out
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]


def test_send_leaves_other_exams_waiting(
    run_cli: RunCli, exams: list[Exam], tmp_path: Path
) -> None:
    port = free_port()
    key = add_storage_server(run_cli, "Arquivo", port)
    sent, other = exams
    refused_send(run_cli, sent)
    refused_send(run_cli, other)
    waiting = outbox_rows(run_cli, "--exam", other.exam_id)

    with run_storescp_on_port(port, tmp_path / "received"):
        result = run_cli("send", sent.exam_id)

    assert result.code == 0, result.out
    assert states_of(outbox_rows(run_cli, "--exam", sent.exam_id), key) == [
        "sent",
        "sent",
    ]
    assert outbox_rows(run_cli, "--exam", other.exam_id) == waiting


def test_send_leaves_manual_server_waiting(run_cli: RunCli, exams: list[Exam]) -> None:
    mirror = add_storage_server(run_cli, "Espelho", free_port())
    manual = add_storage_server(run_cli, "Manual", free_port(), action="manual")
    refused_send(run_cli, exams[0], "--to", manual)
    waiting = outbox_rows(run_cli, "--server", manual)

    result = run_cli("send", exams[0].exam_id)

    assert result.code == 1
    assert states_of(outbox_rows(run_cli), mirror) == ["queued", "queued"]
    assert outbox_rows(run_cli, "--server", manual) == waiting
