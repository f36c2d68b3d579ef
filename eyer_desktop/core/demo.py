"""The demo: a temporary profile with sample exams and a DICOM peer of its own.

:func:`create_demo` writes sample exams into a new profile folder, starts a
:class:`~eyer_desktop.core.demo_peer.DemoPeer` on loopback and adds three
servers that point at it: a Mirror archive, a Manual reading station and a
worklist server. The primary cloud stays unconfigured, so nothing leaves the
machine. The sample exams are queued by the routing rules, as an import would
queue them, so the first delivery run sends them to the demo archive.

:func:`run_headless_demo` is the same flow without a window: it sends the
queued exams, queries the worklist and prints what happened.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eyer_desktop.core import routing
from eyer_desktop.core.demo_peer import DEMO_AE_TITLE, DemoPeer
from eyer_desktop.core.exams import Exam
from eyer_desktop.core.library import patient_display_name
from eyer_desktop.core.net.worklist import WorklistQuery, query_worklist
from eyer_desktop.core.outbox import DeliveryState
from eyer_desktop.core.samples import DEMO_SIZE, write_sample_exams
from eyer_desktop.core.sending import create_engine, dicom_endpoint
from eyer_desktop.core.server_settings import (
    DicomStorageSettings,
    DicomWorklistSettings,
)
from eyer_desktop.core.servers import ServerAction
from eyer_desktop.core.workspace import Workspace

logger = logging.getLogger(__name__)

DEMO_FOLDER_PREFIX = "eyer-desktop-demo-"
RECEIVED_FOLDER = "demo-archive"
HEADLESS_SEND_TIMEOUT_S = 60.0

ARCHIVE_NAME = "Archive (demo)"
READING_ROOM_NAME = "Reading room (demo)"
WORKLIST_NAME = "Worklist (demo)"


@dataclass
class DemoSetup:
    """A running demo: its profile, its peer and the servers pointing at it.

    Attributes:
        root: The temporary profile folder; :meth:`close` deletes it.
        received_dir: Where the demo peer writes the instances it receives.
        archive_key: Key of the Mirror storage server (the demo peer).
        reading_room_key: Key of the Manual storage server (the same peer).
        worklist_key: Key of the worklist server (the same peer).
        worklist_date: The date the worklist entries are scheduled on.
    """

    root: Path
    workspace: Workspace
    peer: DemoPeer
    exams: list[Exam]
    archive_key: str
    reading_room_key: str
    worklist_key: str
    worklist_date: dt.date
    received_dir: Path = field(init=False)

    def __post_init__(self) -> None:
        self.received_dir = self.peer.received_dir

    def banner_text(self) -> str:
        """Return a sentence saying that this is a demo and where files go."""
        return (
            f"Demo: a temporary profile with {len(self.exams)} sample exams. "
            f"The demo archive and worklist run inside this program on "
            f"127.0.0.1:{self.peer.port} and write what they receive to "
            f"{self.received_dir}. Nothing is sent anywhere else, and the "
            "profile is deleted when the demo ends."
        )

    def close(self, *, keep: bool = False) -> None:
        """Stop the peer, close the workspace and delete the profile.

        With ``keep`` the profile folder stays, for a look at what was sent.
        """
        self.peer.stop()
        self.workspace.close()
        if not keep:
            shutil.rmtree(self.root, ignore_errors=True)
            logger.info("Demo profile %s deleted", self.root)


def create_demo(
    root: Path | None = None,
    *,
    size: int = DEMO_SIZE,
    seed: int = 0,
    today: dt.date | None = None,
) -> DemoSetup:
    """Create a demo profile in ``root`` (a new temporary folder by default).

    The peer is started before this returns; call :meth:`DemoSetup.close`.

    Args:
        root: An empty or missing folder for the profile.
        size: Side of the sample images in pixels.
        seed: Seed of the sample exams.
        today: The date of the worklist entries; defaults to today.
    """
    if root is None:
        root = Path(tempfile.mkdtemp(prefix=DEMO_FOLDER_PREFIX))
    workspace = Workspace.open(root)
    worklist_date = today or dt.date.today()
    peer = DemoPeer.with_demo_worklist(root / RECEIVED_FOLDER, worklist_date)
    peer.start()
    try:
        keys = _add_demo_servers(workspace, peer.port)
        exams = _add_sample_exams(workspace, size, seed)
    except BaseException:
        peer.stop()
        workspace.close()
        raise

    archive_key, reading_room_key, worklist_key = keys
    return DemoSetup(
        root=root,
        workspace=workspace,
        peer=peer,
        exams=exams,
        archive_key=archive_key,
        reading_room_key=reading_room_key,
        worklist_key=worklist_key,
        worklist_date=worklist_date,
    )


def _add_demo_servers(workspace: Workspace, port: int) -> tuple[str, str, str]:
    """Add the demo's servers; return the archive, reading room and worklist keys."""
    settings = dataclasses.replace(
        workspace.settings, institution_name="Clínica de Olhos São Lucas (demo)"
    )
    workspace.save_settings(settings)

    servers = workspace.servers
    storage = DicomStorageSettings(called_ae=DEMO_AE_TITLE, host="127.0.0.1", port=port)
    archive = servers.add(ARCHIVE_NAME, ServerAction.MIRROR, storage)
    reading_room = servers.add(
        READING_ROOM_NAME,
        ServerAction.MANUAL,
        dataclasses.replace(storage, called_ae="READINGROOM"),
    )
    worklist = servers.add(
        WORKLIST_NAME,
        ServerAction.MIRROR,
        DicomWorklistSettings(
            called_ae=DEMO_AE_TITLE, host="127.0.0.1", port=port, modality="OP"
        ),
    )
    workspace.save_servers()
    return archive.key, reading_room.key, worklist.key


def _add_sample_exams(workspace: Workspace, size: int, seed: int) -> list[Exam]:
    """Write the sample exams and queue them by the routing rules, as an import."""
    started = time.monotonic()
    exams = write_sample_exams(workspace.library, size=size, seed=seed)
    logger.info(
        "Demo: %d sample exams written in %.1f s",
        len(exams),
        time.monotonic() - started,
    )
    servers = list(workspace.servers)
    for exam in exams:
        routing.enqueue_exam(workspace.outbox, servers, exam)
    return exams


def run_headless_demo(demo: DemoSetup, write: Callable[[str], None] = print) -> bool:
    """Send the demo's queued exams, query its worklist, and report each step.

    Returns:
        True when every queued image reached the demo archive and the
        worklist query returned entries.
    """
    workspace = demo.workspace
    write(f"Sending {len(demo.exams)} sample exams to {ARCHIVE_NAME}...")
    engine = create_engine(workspace)
    started = time.monotonic()
    summary = engine.run_until_idle(deadline=time.time() + HEADLESS_SEND_TIMEOUT_S)
    write(
        f"  {summary.sent} images sent, {summary.warnings} with warnings, "
        f"{summary.retries} to retry, {summary.failed} failed "
        f"in {time.monotonic() - started:.1f} s"
    )
    delivered = _report_exams(demo, write)
    write(
        f"  The demo archive received {demo.peer.received_count} files in "
        f"{demo.received_dir}"
    )

    server = workspace.servers.get(demo.worklist_key)
    assert isinstance(server.settings, DicomWorklistSettings)
    day = demo.worklist_date
    query = WorklistQuery(modality=server.settings.modality, dates=(day, day))
    items = query_worklist(dicom_endpoint(server), query)
    write(f"Worklist of {day:%Y-%m-%d} on {WORKLIST_NAME}: {len(items)} entries")
    for item in items:
        when = item.scheduled_time.strftime("%H:%M") if item.scheduled_time else "--:--"
        name = patient_display_name(item.patient_name)
        write(f"  {when}  {name}  ({item.requested_procedure_description})")
    return delivered and bool(items)


def _report_exams(demo: DemoSetup, write: Callable[[str], None]) -> bool:
    """Write one line per exam with its delivered images; return if all were."""
    all_delivered = True
    for exam in demo.exams:
        deliveries = demo.workspace.outbox.deliveries(
            exam_id=exam.exam_id, server_key=demo.archive_key
        )
        delivered = sum(
            d.state in (DeliveryState.SENT, DeliveryState.WARNING) for d in deliveries
        )
        all_delivered &= delivered == len(deliveries) > 0
        name = patient_display_name(exam.patient.name)
        write(
            f"  {exam.exam_type.value:<10} {name:<36} "
            f"{delivered}/{len(deliveries)} delivered"
        )
    return all_delivered
