"""send and outbox run end when the cloud responds one byte at a time.

The primary cloud points at a fake HTTP server that trickles its reply, so
each read gets a byte before the timeout. Only the request's time limit ends
the delivery, which then waits to retry like any transient failure.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.paths import AppPaths
from tests.cli.conftest import CliResult, RunCli
from tests.helpers.delivery_profile import (  # noqa: F401
    PRIMARY_KEY,
    copy_samples,
    outbox_rows,
    sample_library_fixture,
    set_cloud,
    states_of,
)
from tests.helpers.trickling_peer import (
    ENDLESS_HTTP_HEAD,
    TricklingPeer,
    run_trickling_peer,
    run_within,
)

TIMEOUT_S = 2
HANG_S = 90.0


@pytest.fixture(name="color_exam")
def color_exam_fixture(isolated_profile: AppPaths, sample_library: Path) -> Exam:
    """The color sample exam, two images, in the test profile's library."""
    return copy_samples(isolated_profile, sample_library)[0]


@pytest.fixture(name="trickling_cloud")
def trickling_cloud_fixture(run_cli: RunCli) -> Iterator[TricklingPeer]:
    with run_trickling_peer(ENDLESS_HTTP_HEAD) as peer:
        set_cloud(run_cli, f"http://127.0.0.1:{peer.port}/dicom-web")
        edited = run_cli("servers", "edit", PRIMARY_KEY, "--timeout", str(TIMEOUT_S))
        assert edited.code == 0, edited.err
        yield peer


def run_cli_within(run_cli: RunCli, *args: str) -> CliResult:
    finished = run_within(HANG_S, lambda: run_cli(*args))
    assert finished.error is None
    assert isinstance(finished.value, CliResult)
    return finished.value


def test_send_ends_and_waits_to_retry(
    run_cli: RunCli, color_exam: Exam, trickling_cloud: TricklingPeer
) -> None:
    result = run_cli_within(run_cli, "send", color_exam.exam_id)

    assert result.code == 1, result.err
    assert result.out.startswith("0 sent, 0 with warnings, 2 to retry, 0 failed")
    assert "did not finish within" in result.out
    assert f"twice the server's timeout of {TIMEOUT_S} s" in result.out
    assert "retry at" in result.out
    assert states_of(outbox_rows(run_cli), PRIMARY_KEY) == ["queued", "queued"]
    assert trickling_cloud.connections == 1


def test_outbox_run_ends(
    run_cli: RunCli, color_exam: Exam, trickling_cloud: TricklingPeer
) -> None:
    run_cli_within(run_cli, "send", color_exam.exam_id)
    assert run_cli("outbox", "retry-now").code == 0

    result = run_cli_within(run_cli, "outbox", "run")

    assert result.code == 1
    assert result.out.startswith("0 sent, 0 with warnings, 2 to retry, 0 failed")
    assert "2 deliveries still queued" in result.err
    assert trickling_cloud.connections == 2
