"""The outbox retry-now command: failed and waiting deliveries become due now.

A server that is down is a free loopback port where nothing listens, so its
deliveries wait out a retry delay. It comes up as dcmtk's storescp, whose
port the server is then edited to.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.paths import AppPaths
from tests.cli.conftest import CliResult, RunCli
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


@pytest.fixture(name="exams")
def exams_fixture(isolated_profile: AppPaths, sample_library: Path) -> list[Exam]:
    """The color and red-free sample exams, two images each."""
    return copy_samples(isolated_profile, sample_library)[:2]


def move_server(run_cli: RunCli, key: str, port: int) -> None:
    result = run_cli("servers", "edit", key, "--port", str(port))
    assert result.code == 0, result.err


def waiting_key(run_cli: RunCli, exams: list[Exam]) -> str:
    """Add a mirror server that is down and send the exams to it, so they wait."""
    key = add_storage_server(run_cli, "Arquivo", free_port())
    for exam in exams:
        sent = run_cli("send", exam.exam_id)
        assert sent.code == 1, sent.err
        assert "retry at" in sent.out
    return key


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err


@pytest.mark.integration
def test_retry_now_sends_waiting_deliveries(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, exams: list[Exam]
) -> None:
    key = waiting_key(run_cli, exams[:1])
    move_server(run_cli, key, storescp_jpeg.port)
    not_due = run_cli("outbox", "run")

    retried = run_cli("outbox", "retry-now", "--server", key.lower())
    delivered = run_cli("outbox", "run")

    assert not_due.out.startswith("0 sent")
    assert retried.code == 0, retried.err
    assert retried.out.strip() == "2 deliveries due now"
    assert delivered.code == 0, delivered.err
    assert delivered.out.startswith("2 sent")
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]
    assert len(storescp_jpeg.received_files()) == 2


@pytest.mark.integration
def test_retry_now_one_exam_only(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, exams: list[Exam]
) -> None:
    key = waiting_key(run_cli, exams)
    move_server(run_cli, key, storescp_jpeg.port)
    first, second = exams

    retried = run_cli("outbox", "retry-now", "--exam", first.exam_id[:8])
    delivered = run_cli("outbox", "run")

    assert retried.out.strip() == "2 deliveries due now"
    assert delivered.out.startswith("2 sent")
    first_rows = outbox_rows(run_cli, "--exam", first.exam_id)
    second_rows = outbox_rows(run_cli, "--exam", second.exam_id)
    assert states_of(first_rows, key) == ["sent", "sent"]
    assert states_of(second_rows, key) == ["queued", "queued"]


@pytest.mark.integration
def test_retry_now_requeues_failed(
    run_cli: RunCli,
    wlmscpfs_server: DcmtkServer,
    storescp_jpeg: DcmtkServer,
    exams: list[Exam],
) -> None:
    # wlmscpfs rejects an association that proposes only storage SOP classes,
    # which is a permanent failure from a real peer.
    key = add_storage_server(
        run_cli, "Arquivo", wlmscpfs_server.port, aet=wlmscpfs_server.ae_title
    )
    run_cli("send", exams[0].exam_id)
    assert states_of(outbox_rows(run_cli), key) == ["failed", "failed"]
    move_server(run_cli, key, storescp_jpeg.port)

    retried = run_cli("outbox", "retry-now")
    delivered = run_cli("outbox", "run")

    assert retried.out.strip() == "2 deliveries due now"
    assert delivered.out.startswith("2 sent")
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]


@pytest.mark.integration
def test_retry_now_keeps_pause(run_cli: RunCli, exams: list[Exam]) -> None:
    key = waiting_key(run_cli, exams[:1])
    assert run_cli("outbox", "pause", key).code == 0

    retried = run_cli("outbox", "retry-now", "--server", key)

    assert retried.code == 0, retried.err
    assert retried.out.strip() == "0 deliveries due now"
    assert states_of(outbox_rows(run_cli), key) == ["paused", "paused"]


def test_retry_now_empty_outbox(run_cli: RunCli) -> None:
    result = run_cli("outbox", "retry-now")

    assert result.code == 0, result.err
    assert result.out.strip() == "0 deliveries due now"
    assert result.err == ""


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (("--server", "ZZZ999"), ("ZZZ999",)),
        (("--exam", "ffff0000"), ("Exam 'ffff0000'",)),
    ],
)
def test_retry_now_unknown_value_exits_2(
    run_cli: RunCli, arguments: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    result = run_cli("outbox", "retry-now", *arguments)

    assert result.code == 2
    assert_one_line_error(result, *fragments)
