"""A delivery process killed with SIGKILL while it sends, then started again.

``eyer-desktop outbox run`` runs as its own process and sends 50 images to
Orthanc over DIMSE. The test kills it as soon as Orthanc has stored some of
them, so the outbox still marks the whole batch as being sent. The next
``outbox run`` queues those deliveries again and sends them; Orthanc stores
a resent image in place of the first copy, because the SOP Instance UID is
the same. In the end every image is in Orthanc exactly once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.samples import write_sample_images
from tests.cli.conftest import RunCli
from tests.helpers.delivery_profile import (  # noqa: F401
    SAMPLE_SIZE,
    add_storage_server,
    outbox_rows,
    run_cli_fixture,
)
from tests.helpers.orthanc import (  # noqa: F401
    OrthancServer,
    orthanc_fixture,
    orthanc_server_fixture,
)

pytestmark = pytest.mark.integration

IMAGE_COUNT = 50
REPOSITORY = Path(__file__).resolve().parents[2]
SEND_TIMEOUT_S = 60.0
POLL_INTERVAL_S = 0.002


def start_outbox_run(profile: Path, log: Path) -> subprocess.Popen[bytes]:
    """Start ``eyer-desktop outbox run`` as a separate process."""
    command = [sys.executable, "-m", "eyer_desktop", "--profile", str(profile)]
    with log.open("ab") as output:
        return subprocess.Popen(
            [*command, "outbox", "run"],
            cwd=REPOSITORY,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def kill_once_some_stored(
    process: subprocess.Popen[bytes], orthanc: OrthancServer
) -> int:
    """SIGKILL the process as soon as Orthanc stores an instance.

    Returns:
        The number of instances Orthanc had stored just before the kill.
    """
    deadline = time.monotonic() + SEND_TIMEOUT_S
    while time.monotonic() < deadline and process.poll() is None:
        stored = orthanc.count_instances()
        if stored > 0:
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return stored
        time.sleep(POLL_INTERVAL_S)
    process.kill()
    process.wait()
    raise AssertionError(
        f"outbox run ended (status {process.returncode}) before Orthanc stored "
        "any instance"
    )


def test_killed_send_resumes_without_duplicates(
    run_cli: RunCli,
    orthanc: OrthancServer,
    isolated_profile: AppPaths,
    tmp_path: Path,
) -> None:
    key = add_storage_server(
        run_cli, "Orthanc", orthanc.dicom_port, aet=orthanc.aet, action="mirror"
    )
    files = write_sample_images(tmp_path / "images", IMAGE_COUNT, size=SAMPLE_SIZE)
    imported = run_cli(
        "exams", "import", *map(str, files),
        "--family-name", "Gonçalves", "--given-name", "Maria",
        "--document", "12345", "--sex", "F",
    )  # fmt: skip
    assert imported.code == 0, imported.err
    exam_id = imported.out.strip()
    profile = isolated_profile.data_dir.parent
    log = tmp_path / "outbox-run.log"

    stored_before_kill = kill_once_some_stored(start_outbox_run(profile, log), orthanc)
    rows_after_kill = outbox_rows(run_cli)
    restarted = start_outbox_run(profile, log)
    restarted.wait(timeout=SEND_TIMEOUT_S)

    rows = outbox_rows(run_cli)
    history = run_cli("outbox", "history", exam_id)
    stored_uids = {
        orthanc.instance_tags(orthanc_id)["SOPInstanceUID"]
        for orthanc_id in orthanc.instance_ids()
    }
    assert 0 < stored_before_kill < IMAGE_COUNT, log.read_text()
    # Opening the outbox queued the interrupted deliveries again.
    assert {row["state"] for row in rows_after_kill} == {"queued"}
    assert restarted.returncode == 0, log.read_text()
    assert len(rows) == IMAGE_COUNT
    assert {row["state"] for row in rows} == {"sent"}
    assert {row["server"] for row in rows} == {key}
    assert {row["attempts"] for row in rows} == {2}
    assert history.out.count(" recovered ") == IMAGE_COUNT
    assert orthanc.count_instances() == IMAGE_COUNT
    assert stored_uids == {row["sop_instance_uid"] for row in rows}
