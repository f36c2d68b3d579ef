"""Server actions end to end: which real peer receives an exam, and when.

The primary cloud is Orthanc's DICOMweb service, or a URL on a closed
loopback port when the primary must fail. Contingency, manual, mirror and
deactivated servers are dcmtk storescp. Exams go out through the command
line, as a user or a script sends them.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.paths import AppPaths
from tests.cli.conftest import RunCli
from tests.helpers.dcmtk import DcmtkServer, free_port, run_storescp
from tests.helpers.delivery_profile import (  # noqa: F401
    PRIMARY_KEY,
    add_storage_server,
    copy_samples,
    instance_uids,
    outbox_rows,
    read_received,
    run_cli_fixture,
    sample_library_fixture,
    set_action,
    set_cloud,
    states_of,
    store_password,
)
from tests.helpers.keyrings import MemoryKeyring, installed_keyring
from tests.helpers.orthanc import (  # noqa: F401
    OrthancServer,
    orthanc_fixture,
    orthanc_server_fixture,
)

pytestmark = pytest.mark.integration


@pytest.fixture(name="exams")
def exams_fixture(isolated_profile: AppPaths, sample_library: Path) -> list[Exam]:
    """The color and red-free sample exams, two images each."""
    return copy_samples(isolated_profile, sample_library)[:2]


@pytest.fixture(name="contingency")
def contingency_fixture(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "contingency", accept_jpeg=True) as server:
        yield server


@pytest.fixture(name="archive")
def archive_fixture(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(tmp_path / "archive", accept_jpeg=True) as server:
        yield server


def ids_of(exams: list[Exam]) -> list[str]:
    return [exam.exam_id for exam in exams]


def test_failing_primary_sends_to_contingency(
    run_cli: RunCli, exams: list[Exam], contingency: DcmtkServer
) -> None:
    set_cloud(run_cli, f"http://127.0.0.1:{free_port()}/dicom-web")
    key = add_storage_server(
        run_cli, "Contingência", contingency.port, action="contingency"
    )

    sent = run_cli("send", *ids_of(exams))
    ran = run_cli("outbox", "run")

    rows = outbox_rows(run_cli)
    received = read_received(contingency.received_files())
    assert sent.code == 1
    assert states_of(rows, PRIMARY_KEY) == ["queued"] * 4
    assert all(
        "refused" in row["last_error"] for row in rows if row["server"] == PRIMARY_KEY
    )
    assert states_of(rows, key) == ["sent"] * 4
    assert {row["route"] for row in rows if row["server"] == key} == {"contingency"}
    assert set(received) == instance_uids(exams)
    # The primary keeps its deliveries queued, so the run is not complete.
    assert ran.code == 1
    assert "4 sent" in ran.out
    assert "4 deliveries still queued" in ran.err


def test_working_primary_keeps_contingency_idle(
    run_cli: RunCli,
    exams: list[Exam],
    contingency: DcmtkServer,
    orthanc: OrthancServer,
) -> None:
    set_cloud(run_cli, orthanc.dicomweb_url, username=orthanc.username)
    key = add_storage_server(
        run_cli, "Contingência", contingency.port, action="contingency"
    )

    with installed_keyring(MemoryKeyring()):
        store_password(PRIMARY_KEY, orthanc.password)
        sent = run_cli("send", *ids_of(exams))
        ran = run_cli("outbox", "run")

    rows = outbox_rows(run_cli)
    assert sent.code == 0, sent.err
    assert ran.code == 0, ran.err
    assert states_of(rows, PRIMARY_KEY) == ["sent"] * 4
    assert states_of(rows, key) == []
    assert orthanc.count_instances() == 4
    assert contingency.received_files() == []


def test_deactivated_primary_sends_to_contingency_at_once(
    run_cli: RunCli, exams: list[Exam], contingency: DcmtkServer
) -> None:
    set_cloud(run_cli, f"http://127.0.0.1:{free_port()}/dicom-web")
    set_action(run_cli, PRIMARY_KEY, "deactivated")
    key = add_storage_server(
        run_cli, "Contingência", contingency.port, action="contingency"
    )

    sent = run_cli("send", *ids_of(exams))

    rows = outbox_rows(run_cli)
    assert sent.code == 0, sent.err
    assert states_of(rows, PRIMARY_KEY) == []
    assert states_of(rows, key) == ["sent"] * 4
    assert set(read_received(contingency.received_files())) == instance_uids(exams)


def test_manual_server_receives_only_on_request(
    run_cli: RunCli, exams: list[Exam], archive: DcmtkServer
) -> None:
    key = add_storage_server(run_cli, "Manual", archive.port, action="manual")

    routed = run_cli("send", exams[0].exam_id)
    nothing_received = archive.received_files()
    requested = run_cli("send", "--to", key.lower(), exams[0].exam_id)

    rows = outbox_rows(run_cli)
    assert routed.code == 1
    assert "No server receives these exams" in routed.out
    assert nothing_received == []
    assert requested.code == 0, requested.err
    assert states_of(rows, key) == ["sent", "sent"]
    assert {row["route"] for row in rows} == {"manual"}
    assert set(read_received(archive.received_files())) == instance_uids(exams[:1])


def test_send_to_resends_delivered_exam(
    run_cli: RunCli, exams: list[Exam], archive: DcmtkServer
) -> None:
    key = add_storage_server(run_cli, "Arquivo", archive.port, action="mirror")

    first = run_cli("send", exams[0].exam_id)
    again = run_cli("send", exams[0].exam_id)
    resent = run_cli("send", "--to", key, exams[0].exam_id)

    rows = outbox_rows(run_cli)
    assert first.code == 0, first.err
    assert again.code == 0, again.err
    assert "0 sent" in again.out
    assert resent.code == 0, resent.err
    assert "2 sent" in resent.out
    assert states_of(rows, key) == ["sent", "sent"]
    # storescp writes one file per instance received, named by SOP Instance UID.
    assert len(archive.received_files()) == 2


def test_deactivated_server_keeps_queue_until_reactivated(
    run_cli: RunCli,
    exams: list[Exam],
    archive: DcmtkServer,
    isolated_profile: AppPaths,
) -> None:
    key = add_storage_server(run_cli, "Espelho", archive.port, action="mirror")
    stopped_port = free_port()
    run_cli("servers", "edit", key, "--port", str(stopped_port))
    queued = run_cli("send", exams[0].exam_id)

    set_action(run_cli, key, "deactivated")
    run_cli("servers", "edit", key, "--port", str(archive.port))
    while_deactivated = run_cli("outbox", "run")
    listing = run_cli("outbox", "list", "--server", key)
    refused = run_cli("send", "--to", key, exams[1].exam_id)
    paused_rows = outbox_rows(run_cli, "--server", key)

    assert queued.code == 1
    assert while_deactivated.code == 0, while_deactivated.err
    assert "0 sent" in while_deactivated.out
    assert archive.received_files() == []
    assert states_of(paused_rows, key) == ["paused", "paused"]
    assert listing.out.count(" paused ") == 2
    assert refused.code == 2
    assert "is deactivated" in refused.err

    set_action(run_cli, key, "mirror")
    reactivated = run_cli("outbox", "run")

    assert reactivated.code == 0, reactivated.err
    assert "2 sent" in reactivated.out
    assert states_of(outbox_rows(run_cli), key) == ["sent", "sent"]
    assert set(read_received(archive.received_files())) == instance_uids(exams[:1])


def test_deactivated_server_gets_no_new_exam(
    run_cli: RunCli, exams: list[Exam], archive: DcmtkServer
) -> None:
    key = add_storage_server(run_cli, "Espelho", archive.port, action="deactivated")
    other = add_storage_server(run_cli, "Arquivo", archive.port, action="mirror")

    sent = run_cli("send", *ids_of(exams))

    rows = outbox_rows(run_cli)
    assert sent.code == 0, sent.err
    assert states_of(rows, key) == []
    assert states_of(rows, other) == ["sent"] * 4
