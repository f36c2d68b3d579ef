"""Deleting an exam, or removing a server, while its deliveries are being sent.

dcmtk's storescp with ``--sleep-during`` sleeps at each step of receiving
a C-STORE, three times for these small images with dcmtk 3.6.7. So each
response takes seconds, which leaves time to delete or remove while the
batch is on the wire. The sender's outcome then arrives after the cancel.
It is a success when the DIMSE timeout is longer than the sleeps, and a
transient failure when it is shorter. Either way the deliveries must stay
cancelled.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core import removal
from eyer_desktop.core.delivery import RunSummary, ServerPhase, ServerProgress
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.routing import enqueue_exam
from eyer_desktop.core.samples import write_sample_exams
from eyer_desktop.core.sending import create_engine
from eyer_desktop.core.server_settings import DicomStorageSettings, DicomTimeouts
from eyer_desktop.core.workspace import Workspace
from tests.helpers.dcmtk import DcmtkServer, run_storescp

pytestmark = pytest.mark.integration

SLEEP_S = 1
"""Seconds storescp sleeps at each step of receiving a C-STORE."""

WAIT_S = 30.0
"""Time allowed for the background send to reach the server, or to end."""

# (DIMSE timeout, outcome the sender reports after the cancel)
OUTCOMES = [
    pytest.param(30.0, "sent", id="stored"),
    pytest.param(1.0, "failed", id="timed-out"),
]


@pytest.fixture
def workspace() -> Iterator[Workspace]:
    """The workspace of the test's own profile."""
    opened = Workspace.open()
    yield opened
    opened.close()


@pytest.fixture
def exam(workspace: Workspace) -> Exam:
    """A two-image sample exam in the workspace's library."""
    return write_sample_exams(workspace.library, size=64)[0]


@pytest.fixture
def slow_storescp(tmp_path: Path) -> Iterator[DcmtkServer]:
    sleep = ["--sleep-during", str(SLEEP_S)]
    with run_storescp(
        tmp_path / "received", accept_jpeg=True, extra_arguments=sleep
    ) as server:
        yield server


class BackgroundSend:
    """A delivery run on its own thread, as the GUI and ``outbox run`` do it."""

    def __init__(self, workspace: Workspace) -> None:
        self.on_the_wire = threading.Event()
        self.summary: RunSummary | None = None
        self._engine = create_engine(workspace, progress=self._progress)
        self._thread = threading.Thread(target=self._run, name="background-send")

    def start(self) -> None:
        self._thread.start()
        assert self.on_the_wire.wait(WAIT_S), "the send never reached the server"

    def join(self) -> RunSummary:
        self._thread.join(WAIT_S)
        assert not self._thread.is_alive(), "the send did not end"
        assert self.summary is not None
        return self.summary

    def _progress(self, progress: ServerProgress) -> None:
        if progress.phase is ServerPhase.SENDING:
            self.on_the_wire.set()

    def _run(self) -> None:
        self.summary = self._engine.run_once()


def add_archive(workspace: Workspace, port: int, dimse_timeout: float) -> str:
    settings = DicomStorageSettings(
        called_ae="STORESCP",
        host="127.0.0.1",
        port=port,
        timeouts=DicomTimeouts(dimse=dimse_timeout),
    )
    server = workspace.servers.add("Arquivo", "mirror", settings)
    workspace.save_servers()
    return server.key


def states(workspace: Workspace, exam: Exam) -> list[DeliveryState]:
    return [d.state for d in workspace.outbox.deliveries(exam_id=exam.exam_id)]


def ignored_outcomes(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if "was cancelled while being sent" in record.getMessage()
    ]


@pytest.mark.parametrize(("dimse_timeout", "outcome"), OUTCOMES)
def test_exam_deleted_while_sending_stays_cancelled(
    workspace: Workspace,
    exam: Exam,
    slow_storescp: DcmtkServer,
    caplog: pytest.LogCaptureFixture,
    dimse_timeout: float,
    outcome: str,
) -> None:
    caplog.set_level(logging.INFO, logger="eyer_desktop.core.outbox")
    add_archive(workspace, slow_storescp.port, dimse_timeout)
    enqueue_exam(workspace.outbox, list(workspace.servers), exam)
    send = BackgroundSend(workspace)
    send.start()
    assert states(workspace, exam) == [DeliveryState.SENDING] * 2

    deletion = removal.delete_exam(
        workspace.library, workspace.outbox, exam.exam_id, cache_dir=None, force=True
    )
    summary = send.join()
    later = create_engine(workspace).run_once()

    assert deletion.cancelled == 2
    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2
    assert summary.retries == 0
    assert summary.failed == 0
    assert later.batches == 0
    ignored = ignored_outcomes(caplog)
    assert len(ignored) == 2
    assert all(f"its {outcome} outcome is not recorded" in line for line in ignored)


@pytest.mark.parametrize(("dimse_timeout", "outcome"), OUTCOMES)
def test_server_removed_while_sending_stays_cancelled(
    workspace: Workspace,
    exam: Exam,
    slow_storescp: DcmtkServer,
    caplog: pytest.LogCaptureFixture,
    dimse_timeout: float,
    outcome: str,
) -> None:
    caplog.set_level(logging.INFO, logger="eyer_desktop.core.outbox")
    key = add_archive(workspace, slow_storescp.port, dimse_timeout)
    enqueue_exam(workspace.outbox, list(workspace.servers), exam)
    send = BackgroundSend(workspace)
    send.start()

    _, cancelled = removal.remove_server(
        workspace.servers, workspace.outbox, key, force=True
    )
    workspace.save_servers()
    summary = send.join()
    later = create_engine(workspace).run_once()

    assert cancelled == 2
    assert states(workspace, exam) == [DeliveryState.CANCELLED] * 2
    assert summary.retries == 0
    assert later.batches == 0
    assert removal.orphaned_deliveries(workspace.outbox, workspace.servers) == []
    ignored = ignored_outcomes(caplog)
    assert len(ignored) == 2
    assert all(f"its {outcome} outcome is not recorded" in line for line in ignored)


def test_cancel_history_notes_send_in_progress(
    workspace: Workspace, exam: Exam, slow_storescp: DcmtkServer
) -> None:
    add_archive(workspace, slow_storescp.port, 30.0)
    enqueue_exam(workspace.outbox, list(workspace.servers), exam)
    send = BackgroundSend(workspace)
    send.start()

    removal.delete_exam(
        workspace.library, workspace.outbox, exam.exam_id, cache_dir=None, force=True
    )
    send.join()

    cancel_events = [
        event
        for event in workspace.outbox.history(exam.exam_id)
        if event.kind == "cancelled"
    ]
    assert len(cancel_events) == 2
    assert all("while being sent" in event.detail for event in cancel_events)
