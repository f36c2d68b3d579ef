"""The send, worklist, outbox, echo and test-server commands, as scripts use them.

Exit codes: 0 when everything asked for was delivered, 1 when some delivery
or query failed, 2 when an argument is invalid. Errors are one line on
standard error. Tests that need a peer run dcmtk's storescp or wlmscpfs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.samples import write_sample_images
from tests.cli.conftest import CliResult, RunCli
from tests.helpers.dcmtk import (  # noqa: F401
    DcmtkServer,
    free_port,
    storescp_jpeg_fixture,
    storescp_uncompressed_fixture,
    wlmscpfs_server_fixture,
)
from tests.helpers.delivery_profile import (  # noqa: F401
    SAMPLE_SIZE,
    add_storage_server,
    add_worklist_server,
    copy_samples,
    outbox_rows,
    sample_library_fixture,
    states_of,
)


@pytest.fixture(name="color_exam")
def color_exam_fixture(isolated_profile: AppPaths, sample_library: Path) -> Exam:
    """The color sample exam, two images, in the test profile's library."""
    return copy_samples(isolated_profile, sample_library)[0]


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err
    for fragment in fragments:
        assert fragment in result.err


def import_exam(run_cli: RunCli, folder: Path) -> str:
    """Import two sample images with ``exams import``, which queues them."""
    files = write_sample_images(folder, 2, size=SAMPLE_SIZE)
    result = run_cli(
        "exams", "import", *map(str, files), "--family-name", "Araújo",
        "--document", "98765",
    )  # fmt: skip
    assert result.code == 0, result.err
    return result.out.strip()


def ids_of(rows: list[dict[str, Any]]) -> list[str]:
    return [str(row["id"]) for row in rows]


# Invalid input: exit code 2


def test_send_unknown_exam_exits_2(run_cli: RunCli, color_exam: Exam) -> None:
    result = run_cli("send", "ffff0000")

    assert result.code == 2
    assert_one_line_error(result, "Exam 'ffff0000'", "exams list")


def test_send_too_short_prefix_exits_2(run_cli: RunCli, color_exam: Exam) -> None:
    result = run_cli("send", color_exam.exam_id[:2])

    assert result.code == 2
    assert_one_line_error(result, "4 or more characters")


def test_send_to_unknown_server_exits_2(run_cli: RunCli, color_exam: Exam) -> None:
    result = run_cli("send", "--to", "ZZZ999", color_exam.exam_id)

    assert result.code == 2
    assert_one_line_error(result, "ZZZ999", "EYE000")
    assert outbox_rows(run_cli) == []


def test_send_to_worklist_server_exits_2(run_cli: RunCli, color_exam: Exam) -> None:
    key = add_worklist_server(run_cli, "RIS", free_port(), aet="WLMSCP")

    result = run_cli("send", "--to", key, color_exam.exam_id)

    assert result.code == 2
    assert_one_line_error(result, key, "worklist server")


def test_send_without_receiver_exits_1(run_cli: RunCli, color_exam: Exam) -> None:
    result = run_cli("send", color_exam.exam_id)

    assert result.code == 1
    assert "No server receives these exams" in result.out


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (("--date", "2026-13-01"), ("--date '2026-13-01'", "YYYY-MM-DD")),
        (("--date", "2026-02-01..2026-01-01"), ("first date is after the last",)),
        (("--name", "SILVA\\ANA"), ("backslash",)),
    ],
)
def test_worklist_invalid_argument_exits_2(
    run_cli: RunCli, arguments: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    key = add_worklist_server(run_cli, "RIS", free_port(), aet="WLMSCP")

    result = run_cli("worklist", key, *arguments)

    assert result.code == 2
    assert_one_line_error(result, *fragments)


def test_worklist_on_storage_server_exits_2(run_cli: RunCli) -> None:
    key = add_storage_server(run_cli, "Arquivo", free_port())

    result = run_cli("worklist", key)

    assert result.code == 2
    assert_one_line_error(result, key, "not a worklist server")


@pytest.mark.parametrize(
    ("arguments", "fragments"),
    [
        (("run", "--wait", "-1"), ("--wait -1.0", "Give 0 or more")),
        (("retry",), ("needs delivery ids", "--all-failed")),
        (("history", "ffff0000"), ("Exam 'ffff0000'",)),
        (("list", "--exam", "ffff0000"), ("Exam 'ffff0000'",)),
        (("list", "--server", "ZZZ999"), ("ZZZ999",)),
        (("pause", "ZZZ999"), ("ZZZ999",)),
    ],
)
def test_outbox_invalid_argument_exits_2(
    run_cli: RunCli, arguments: tuple[str, ...], fragments: tuple[str, ...]
) -> None:
    result = run_cli("outbox", *arguments)

    assert result.code == 2
    assert_one_line_error(result, *fragments)


def test_outbox_list_unknown_state_exits_2(run_cli: RunCli) -> None:
    result = run_cli("outbox", "list", "--state", "lost")

    assert result.code == 2
    assert "invalid choice: 'lost'" in result.err


def test_outbox_run_with_empty_outbox(run_cli: RunCli) -> None:
    result = run_cli("outbox", "run")

    assert result.code == 0, result.err
    assert result.out.strip() == "0 sent, 0 with warnings, 0 to retry, 0 failed"


# Delivering and the outbox, with real peers


@pytest.mark.integration
def test_send_prints_table_and_exits_0(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, color_exam: Exam
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)

    result = run_cli("send", color_exam.exam_id[:8])

    lines = result.out.splitlines()
    assert result.code == 0, result.err
    assert lines[0] == "2 sent, 0 with warnings, 0 to retry, 0 failed"
    assert lines[1].split() == ["EXAM", "SERVER", "DELIVERED", "NOTE"]
    assert lines[2].split() == [color_exam.exam_id[:8], key, "2/2"]
    assert result.err == ""


@pytest.mark.integration
def test_server_down_exits_1_and_stays_queued(
    run_cli: RunCli, color_exam: Exam
) -> None:
    key = add_storage_server(run_cli, "Arquivo", free_port())

    sent = run_cli("send", color_exam.exam_id)
    ran = run_cli("outbox", "run", "--wait", "0.2")

    assert sent.code == 1
    assert "Connection to STORESCP@127.0.0.1" in sent.out
    assert "retry at" in sent.out
    assert ran.code == 1
    assert ran.err.splitlines()[-1] == "2 deliveries still queued"
    assert states_of(outbox_rows(run_cli), key) == ["queued", "queued"]


@pytest.mark.integration
def test_pause_holds_until_resume(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, tmp_path: Path
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)

    paused = run_cli("outbox", "pause", key.lower())
    import_exam(run_cli, tmp_path / "images")
    while_paused = run_cli("outbox", "run")
    paused_rows = outbox_rows(run_cli)

    assert paused.out.strip() == f"{key}: paused, 0 deliveries held"
    assert while_paused.code == 0, while_paused.err
    assert while_paused.out.startswith("0 sent")
    assert states_of(paused_rows, key) == ["paused", "paused"]
    assert storescp_jpeg.received_files() == []

    resumed = run_cli("outbox", "resume", key)
    delivered = run_cli("outbox", "run")

    assert resumed.out.strip() == f"{key}: resumed, 2 deliveries released"
    assert delivered.code == 0, delivered.err
    assert delivered.out.startswith("2 sent")
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]
    assert len(storescp_jpeg.received_files()) == 2


@pytest.mark.integration
def test_pause_queued_deliveries(run_cli: RunCli, color_exam: Exam) -> None:
    key = add_storage_server(run_cli, "Arquivo", free_port())
    run_cli("send", color_exam.exam_id)

    paused = run_cli("outbox", "pause", key)
    noted = run_cli("send", color_exam.exam_id)

    assert paused.out.strip() == f"{key}: paused, 2 deliveries held"
    assert states_of(outbox_rows(run_cli), key) == ["paused", "paused"]
    assert noted.code == 1
    assert "paused (server deactivated or paused)" in noted.out


@pytest.mark.integration
def test_retry_failed_by_id_and_server(
    run_cli: RunCli,
    wlmscpfs_server: DcmtkServer,
    storescp_jpeg: DcmtkServer,
    color_exam: Exam,
) -> None:
    # wlmscpfs rejects an association that proposes only storage SOP classes,
    # which is a permanent failure from a real peer.
    key = add_storage_server(
        run_cli, "Arquivo", wlmscpfs_server.port, aet=wlmscpfs_server.ae_title
    )
    failed = run_cli("send", color_exam.exam_id)
    rows = outbox_rows(run_cli, "--state", "failed")
    run_cli("servers", "edit", key, "--port", str(storescp_jpeg.port))

    not_due = run_cli("outbox", "run")
    retried_one = run_cli("outbox", "retry", ids_of(rows)[0])
    first_run = run_cli("outbox", "run")
    rest = run_cli("outbox", "retry", "--all-failed", "--server", key)
    second_run = run_cli("outbox", "run")

    assert failed.code == 1
    assert len(rows) == 2
    assert "rejected the association" in rows[0]["last_error"]
    assert not_due.out.startswith("0 sent")
    assert retried_one.out.strip() == "1 deliveries queued again"
    assert first_run.code == 0, first_run.err
    assert first_run.out.startswith("1 sent")
    assert rest.out.strip() == "1 deliveries queued again"
    assert second_run.out.startswith("1 sent")
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]
    assert len(storescp_jpeg.received_files()) == 2


@pytest.mark.integration
def test_retry_rejects_sent_deliveries(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, color_exam: Exam
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)
    run_cli("send", color_exam.exam_id)
    ids = ids_of(outbox_rows(run_cli))

    result = run_cli("outbox", "retry", *ids)

    assert result.code == 2
    assert result.err.splitlines() == [
        f"error: delivery {delivery_id}: is sent and cannot be queued again"
        for delivery_id in ids
    ]
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]


@pytest.mark.integration
def test_cancel_stops_queued_delivery(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, tmp_path: Path
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)
    import_exam(run_cli, tmp_path / "images")
    first_id = ids_of(outbox_rows(run_cli))[0]

    cancelled = run_cli("outbox", "cancel", first_id)
    ran = run_cli("outbox", "run")

    assert cancelled.out.strip() == "1 deliveries cancelled"
    assert ran.out.startswith("1 sent")
    assert states_of(outbox_rows(run_cli), key) == ["cancelled", "sent"]
    assert len(storescp_jpeg.received_files()) == 1


def test_send_report_counts_cancelled(run_cli: RunCli, tmp_path: Path) -> None:
    key = add_storage_server(run_cli, "Arquivo", free_port())
    exam_id = import_exam(run_cli, tmp_path / "images")
    first_id = ids_of(outbox_rows(run_cli))[0]
    assert run_cli("outbox", "cancel", first_id).code == 0

    result = run_cli("send", exam_id)

    assert result.code == 1
    [row] = [line for line in result.out.splitlines() if key in line]
    assert "0/2" in row
    assert "1 cancelled; " in row
    assert "refused" in row


@pytest.mark.integration
def test_list_filters_by_server_state_and_exam(
    run_cli: RunCli,
    storescp_jpeg: DcmtkServer,
    isolated_profile: AppPaths,
    sample_library: Path,
) -> None:
    color, red_free = copy_samples(isolated_profile, sample_library)[:2]
    archive = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)
    down = add_storage_server(run_cli, "Desligado", free_port())
    run_cli("send", color.exam_id, red_free.exam_id)

    by_server = outbox_rows(run_cli, "--server", down)
    by_state = outbox_rows(run_cli, "--state", "sent")
    by_exam = outbox_rows(run_cli, "--exam", red_free.exam_id[:8])
    table = run_cli("outbox", "list", "--state", "queued")

    assert {row["server"] for row in by_server} == {down}
    assert len(by_server) == 4
    assert {row["server"] for row in by_state} == {archive}
    assert len(by_state) == 4
    assert {row["exam_id"] for row in by_exam} == {red_free.exam_id}
    assert len(by_exam) == 4
    header, *rows = table.out.splitlines()
    assert header.split()[:6] == ["ID", "EXAM", "IMAGE", "SERVER", "STATE", "TRIES"]
    assert len(rows) == 4
    assert all(row.split()[3:5] == [down, "queued"] for row in rows)
    assert all("refused" in row for row in rows)


@pytest.mark.integration
def test_history_shows_each_event(
    run_cli: RunCli, storescp_jpeg: DcmtkServer, color_exam: Exam
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)
    run_cli("send", color_exam.exam_id)

    result = run_cli("outbox", "history", color_exam.exam_id[:8])

    header, *rows = result.out.splitlines()
    events = [row.split()[4] for row in rows]
    assert result.code == 0, result.err
    assert header.split() == ["TIME", "SERVER", "IMAGE", "EVENT", "CODE", "DETAIL"]
    assert events == ["queued", "queued", "sending", "sending", "sent", "sent"]
    assert all(row.split()[2] == key for row in rows)
    assert "route mirror" in rows[0]


# echo and test-server


@pytest.mark.integration
def test_echo_reports_round_trip(run_cli: RunCli, storescp_jpeg: DcmtkServer) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)

    result = run_cli("echo", key)

    assert result.code == 0, result.err
    assert result.out.startswith(
        f"{key}: C-ECHO to STORESCP@127.0.0.1:{storescp_jpeg.port} answered in "
    )


@pytest.mark.integration
def test_echo_down_server_exits_1(run_cli: RunCli) -> None:
    key = add_storage_server(run_cli, "Arquivo", free_port())

    result = run_cli("echo", key)

    assert result.code == 1
    assert_one_line_error(result, "refused", "Check the port")


@pytest.mark.integration
def test_test_server_jpeg_archive_passes(
    run_cli: RunCli, storescp_jpeg: DcmtkServer
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_jpeg.port)

    result = run_cli("test-server", key)

    lines = result.out.splitlines()
    assert result.code == 0, result.err
    assert lines[0] == f"ok    Reachable: 127.0.0.1:{storescp_jpeg.port}"
    assert lines[1].startswith("ok    Association accepted: C-ECHO to STORESCP")
    assert lines[2] == "ok    Ophthalmic Photography: accepted with JPEG Baseline"


@pytest.mark.integration
def test_test_server_names_uncompressed_only(
    run_cli: RunCli, storescp_uncompressed: DcmtkServer
) -> None:
    key = add_storage_server(run_cli, "Arquivo", storescp_uncompressed.port)

    result = run_cli("test-server", key)

    assert result.code == 0, result.err
    assert "ok    Ophthalmic Photography: accepted only uncompressed" in result.out


@pytest.mark.integration
def test_test_server_down_fails_first_step(run_cli: RunCli) -> None:
    key = add_storage_server(run_cli, "Arquivo", free_port())

    result = run_cli("test-server", key)

    lines = result.out.splitlines()
    assert result.code == 1
    assert len(lines) == 1
    assert lines[0].startswith("FAIL  Reachable: Connection to STORESCP@127.0.0.1")


@pytest.mark.integration
def test_test_server_worklist(run_cli: RunCli, wlmscpfs_server: DcmtkServer) -> None:
    key = add_worklist_server(
        run_cli, "RIS", wlmscpfs_server.port, aet=wlmscpfs_server.ae_title
    )

    result = run_cli("test-server", key)

    assert result.code == 0, result.err
    assert result.out.splitlines()[-1] == "ok    Worklist: 0 scheduled today for OP"


@pytest.mark.integration
def test_worklist_empty_day_prints_header_only(
    run_cli: RunCli, wlmscpfs_server: DcmtkServer
) -> None:
    key = add_worklist_server(
        run_cli, "RIS", wlmscpfs_server.port, aet=wlmscpfs_server.ae_title
    )

    table = run_cli("worklist", key)
    as_json = run_cli("worklist", key, "--json", "--station")

    assert table.code == 0, table.err
    assert table.out.splitlines() == ["DATE  PATIENT  PATIENT ID  ACCESSION  PROCEDURE"]
    assert json.loads(as_json.out) == []
