"""A delivery process killed in the middle of a batch, against a real storescp.

storescp with ``--sleep-after 1`` responds to each C-STORE at once and then
waits a second before it reads the next one, so the images of one batch are
confirmed a second apart. ``--unique-filenames`` keeps an image sent twice
as two files. The sending process is killed with SIGKILL after
the archive has stored some of them. The images the archive confirmed a
second or more before the kill must be recorded as sent, so that the next
run re-sends only the last ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from pydicom import dcmread

from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.routing import enqueue_exam
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.sending import create_engine
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.workspace import Workspace
from tests.helpers.dcmtk import DcmtkServer, run_storescp

pytestmark = pytest.mark.integration

IMAGES = 8
SIGNAL_IMAGES = 4
STORED_BEFORE_KILL = 4
WAIT_S = 60.0


@pytest.fixture
def paced_storescp(tmp_path: Path) -> Iterator[DcmtkServer]:
    with run_storescp(
        tmp_path / "received",
        accept_jpeg=True,
        extra_arguments=["--sleep-after", "1", "--unique-filenames"],
    ) as server:
        yield server


def received_uids(server: DcmtkServer) -> list[str]:
    """Return the SOP Instance UID of every file storescp wrote."""
    return [
        str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
        for path in server.received_files()
    ]


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    """The workspace of the test's own profile."""
    opened = Workspace.open()
    yield opened
    opened.close()


def queue_for_archive(workspace: Workspace, port: int, images: int) -> tuple[str, int]:
    """Add storescp at ``port`` as a mirror and queue sample exams for it
    until at least ``images`` deliveries wait; return its key and the count.
    """
    settings = DicomStorageSettings(called_ae="STORESCP", host="127.0.0.1", port=port)
    key = workspace.servers.add("Arquivo", "mirror", settings).key
    workspace.save_servers()
    queued = 0
    for exam in write_sample_exams(workspace.library, size=64):
        if queued >= images:
            break
        queued += enqueue_exam(workspace.outbox, list(workspace.servers), exam)
    return key, queued


def start_outbox_run() -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "eyer_desktop", "outbox", "run"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_files(
    server: DcmtkServer, count: int, sender: subprocess.Popen[str]
) -> None:
    """Wait until storescp has written ``count`` files, while ``sender`` runs."""
    deadline = time.monotonic() + WAIT_S
    while len(server.received_files()) < count:
        assert sender.poll() is None, sender.communicate()
        assert time.monotonic() < deadline, "storescp received too little"
        time.sleep(0.05)


def test_kill_mid_batch_keeps_confirmed_images(
    paced_storescp: DcmtkServer, workspace: Workspace
) -> None:
    key, queued = queue_for_archive(workspace, paced_storescp.port, IMAGES)

    sender = start_outbox_run()
    try:
        wait_for_files(paced_storescp, STORED_BEFORE_KILL, sender)
    finally:
        os.kill(sender.pid, signal.SIGKILL)
        sender.communicate(timeout=30)
    stored = received_uids(paced_storescp)

    deliveries = workspace.outbox.deliveries(server_key=key)
    sent = [d for d in deliveries if d.state is DeliveryState.SENT]
    assert len(deliveries) == queued
    # Confirmations come a second apart, and each storing waits until a
    # second has passed since the one before: only the last one or two of
    # the confirmed images can be missing.
    assert len(sent) >= len(stored) - 2
    assert {d.sop_instance_uid for d in sent} <= set(stored)

    summary = create_engine(workspace).run_once()

    received = received_uids(paced_storescp)
    assert summary.sent == queued - len(sent)
    assert set(received) == {d.sop_instance_uid for d in deliveries}
    assert len(received) - queued == len(stored) - len(sent)


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_after_image_on_wire(
    paced_storescp: DcmtkServer, workspace: Workspace, stop_signal: signal.Signals
) -> None:
    key, queued = queue_for_archive(workspace, paced_storescp.port, SIGNAL_IMAGES)

    sender = start_outbox_run()
    try:
        wait_for_files(paced_storescp, 2, sender)
        os.kill(sender.pid, stop_signal)
        signalled = time.monotonic()
        _, err = sender.communicate(timeout=WAIT_S)
    finally:
        if sender.poll() is None:
            sender.kill()
    # The image on the wire takes up to storescp's one-second pause.
    assert time.monotonic() - signalled < 5
    assert sender.returncode == 128 + stop_signal, err

    deliveries = workspace.outbox.deliveries(server_key=key)
    states = [d.state for d in deliveries]
    sent = {d.sop_instance_uid for d in deliveries if d.state is DeliveryState.SENT}
    assert DeliveryState.SENDING not in states
    assert sent == set(received_uids(paced_storescp))
    assert 0 < len(sent) < queued

    summary = create_engine(workspace).run_once()

    received = received_uids(paced_storescp)
    assert summary.sent == queued - len(sent)
    assert sorted(received) == sorted(d.sop_instance_uid for d in deliveries)
