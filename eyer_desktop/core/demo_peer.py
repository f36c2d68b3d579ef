"""A small DICOM peer for the demo: a Storage SCP and a Modality Worklist SCP.

The peer listens on a loopback port of its own and accepts any called AE
title, so one peer can stand for the demo's archive, its reading station and
its worklist server. Each received instance is written as it arrived, file
meta information included, to ``received_dir/<SOP Instance UID>.dcm``. The
worklist contains a few scheduled steps for today with accented Portuguese names,
in UTF-8 (ISO_IR 192).

Worklist matching covers what the application queries by: patient name (``*``
and ``?`` wildcards, ignoring case and accents), modality, scheduled station
AE title and scheduled date or date range. Every other key is returned, not
matched. This is a demonstration peer, not a conformant archive.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import logging
import threading
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset
from pydicom.uid import UID, generate_uid
from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
from pynetdicom.events import EventHandlerType

from eyer_desktop.core.net.worklist import MODALITY_WORKLIST_FIND

logger = logging.getLogger(__name__)

DEMO_AE_TITLE = "EYERDEMO"
VERIFICATION = "1.2.840.10008.1.1"
STATUS_SUCCESS = 0x0000
STATUS_PENDING = 0xFF00
STATUS_CANCEL = 0xFE00
STATUS_OUT_OF_RESOURCES = 0xA700
STATUS_UNABLE_TO_PROCESS = 0xC001


@dataclass(frozen=True)
class DemoWorklistEntry:
    """One scheduled procedure step the demo worklist serves.

    Attributes:
        patient_name: PatientName in DICOM form (``FAMILY^GIVEN^MIDDLE``).
        scheduled_time: Start time of the step on the scheduled date.
    """

    patient_name: str
    patient_id: str
    birth_date: dt.date
    sex: str
    accession_number: str
    procedure_description: str
    scheduled_time: dt.time


DEMO_WORKLIST: tuple[DemoWorklistEntry, ...] = (
    DemoWorklistEntry(
        "Conceição^Ana^Lúcia",
        "52998224725",
        dt.date(1962, 5, 14),
        "F",
        "DEMO0001",
        "Retinografia colorida",
        dt.time(8, 30),
    ),
    DemoWorklistEntry(
        "Gonçalves^João^Estêvão",
        "11144477735",
        dt.date(1955, 9, 3),
        "M",
        "DEMO0002",
        "Retinografia para rastreio de retinopatia diabética",
        dt.time(9, 15),
    ),
    DemoWorklistEntry(
        "Magalhães^Irene",
        "70233368900",
        dt.date(1978, 1, 22),
        "F",
        "DEMO0003",
        "Retinografia e anerita",
        dt.time(10, 0),
    ),
    DemoWorklistEntry(
        "Araújo^Luís^Inácio",
        "39053344705",
        dt.date(1949, 11, 30),
        "M",
        "DEMO0004",
        "Controle de glaucoma",
        dt.time(11, 45),
    ),
)


def worklist_dataset(
    entry: DemoWorklistEntry, date: dt.date, station_ae_title: str = ""
) -> Dataset:
    """Return the worklist item of ``entry`` scheduled on ``date``."""
    item = Dataset()
    item.SpecificCharacterSet = "ISO_IR 192"

    # Patient
    item.PatientName = entry.patient_name
    item.PatientID = entry.patient_id
    item.IssuerOfPatientID = "CPF"
    item.PatientBirthDate = f"{entry.birth_date:%Y%m%d}"
    item.PatientSex = entry.sex

    # Imaging Service Request and Requested Procedure
    item.AccessionNumber = entry.accession_number
    item.ReferringPhysicianName = "Demonstração^Médica"
    item.StudyInstanceUID = generate_uid(entropy_srcs=[entry.accession_number])
    item.RequestedProcedureID = entry.accession_number
    item.RequestedProcedureDescription = entry.procedure_description

    # Scheduled Procedure Step
    step = Dataset()
    step.ScheduledStationAETitle = station_ae_title
    step.ScheduledProcedureStepStartDate = f"{date:%Y%m%d}"
    step.ScheduledProcedureStepStartTime = f"{entry.scheduled_time:%H%M%S}"
    step.Modality = "OP"
    step.ScheduledPerformingPhysicianName = ""
    step.ScheduledProcedureStepDescription = entry.procedure_description
    step.ScheduledProcedureStepID = f"SPS{entry.accession_number[-4:]}"
    step.ScheduledStationName = "EYER"
    item.ScheduledProcedureStepSequence = [step]
    return item


def _fold(text: str) -> str:
    """Return ``text`` without accents and in lower case, for name matching."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _matches_text(pattern: str, value: str) -> bool:
    if not pattern or pattern == "*":
        return True
    return fnmatch.fnmatchcase(_fold(value), _fold(pattern))


def _matches_date(query: str, value: str) -> bool:
    """Return whether a DA value matches a DA matching key (single or range)."""
    if not query:
        return True
    first, separator, last = query.partition("-")
    if not separator:
        return value == first
    return (not first or value >= first) and (not last or value <= last)


def worklist_matches(identifier: Dataset, item: Dataset) -> bool:
    """Return whether a worklist item matches a C-FIND request identifier."""
    if not _matches_text(str(identifier.get("PatientName", "")), str(item.PatientName)):
        return False
    query_steps = identifier.get("ScheduledProcedureStepSequence") or [Dataset()]
    query_step = query_steps[0]
    step = item.ScheduledProcedureStepSequence[0]
    station = str(query_step.get("ScheduledStationAETitle", ""))
    return (
        _matches_text(str(query_step.get("Modality", "")), step.Modality)
        and (not station or station == step.ScheduledStationAETitle)
        and _matches_date(
            str(query_step.get("ScheduledProcedureStepStartDate", "")),
            step.ScheduledProcedureStepStartDate,
        )
    )


class DemoPeer:
    """A Storage SCP and Modality Worklist SCP on a free port of 127.0.0.1.

    Args:
        received_dir: Folder the received instances are written to; created
            when missing.
        worklist: The items the worklist serves, already dated.
        ae_title: The peer's own AE title.

    Attributes:
        port: The port it listens on, set by :meth:`start`.
    """

    def __init__(
        self,
        received_dir: Path,
        worklist: Sequence[Dataset],
        *,
        ae_title: str = DEMO_AE_TITLE,
    ) -> None:
        self.received_dir = received_dir
        self.worklist = list(worklist)
        self.ae_title = ae_title
        self.port = 0
        self._server: Any = None
        self._received = 0
        self._lock = threading.Lock()

    @classmethod
    def with_demo_worklist(
        cls, received_dir: Path, date: dt.date | None = None
    ) -> DemoPeer:
        """Return a peer serving :data:`DEMO_WORKLIST` scheduled on ``date``.

        ``date`` defaults to today.
        """
        day = date or dt.date.today()
        return cls(received_dir, [worklist_dataset(e, day) for e in DEMO_WORKLIST])

    @property
    def received_count(self) -> int:
        """Number of instances stored since the peer started."""
        with self._lock:
            return self._received

    def received_files(self) -> list[Path]:
        """Return the files written so far, sorted by name."""
        if not self.received_dir.is_dir():
            return []
        return sorted(self.received_dir.glob("*.dcm"))

    def start(self) -> int:
        """Start listening on a free loopback port and return the port.

        Raises:
            RuntimeError: The peer is already running.
            OSError: No port could be bound.
        """
        if self._server is not None:
            raise RuntimeError("The demo peer is already running")
        self.received_dir.mkdir(parents=True, exist_ok=True)

        ae = AE(ae_title=self.ae_title)
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(MODALITY_WORKLIST_FIND)
        ae.add_supported_context(VERIFICATION)
        handlers: list[EventHandlerType] = [
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self._on_find),
        ]
        self._server = ae.start_server(
            ("127.0.0.1", 0), block=False, evt_handlers=handlers
        )
        self.port = int(self._server.server_address[1])
        logger.info("Demo peer %s listening on 127.0.0.1:%d", self.ae_title, self.port)
        return self.port

    def stop(self) -> None:
        """Stop listening and close open associations. Does nothing when stopped."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server = None
        logger.info("Demo peer %s stopped", self.ae_title)

    def __enter__(self) -> DemoPeer:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _on_store(self, event: Any) -> int:
        uid = UID(str(event.request.AffectedSOPInstanceUID))
        if not uid.is_valid:
            logger.warning("Demo peer rejected an instance with an invalid UID")
            return STATUS_UNABLE_TO_PROCESS
        target = self.received_dir / f"{uid}.dcm"
        try:
            target.write_bytes(event.encoded_dataset(include_meta=True))
        except OSError as err:
            logger.error("Demo peer could not write %s: %s", target, err)
            return STATUS_OUT_OF_RESOURCES
        with self._lock:
            self._received += 1
        return STATUS_SUCCESS

    def _on_find(self, event: Any) -> Iterator[tuple[int, Dataset | None]]:
        identifier = event.identifier
        matches = [item for item in self.worklist if worklist_matches(identifier, item)]
        logger.info("Demo worklist query: %d items match", len(matches))
        for item in matches:
            if event.is_cancelled:
                yield STATUS_CANCEL, None
                return
            yield STATUS_PENDING, item
        yield STATUS_SUCCESS, None
