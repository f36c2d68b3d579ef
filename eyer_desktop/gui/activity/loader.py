"""Reading the outbox for the Activity page, off the GUI thread.

:class:`ActivityLoader` runs on a worker. A full load reads every delivery;
an incremental load reads only those changed since the newest change the page
has seen. It goes back :data:`LOOKBACK_S` further, because a change is stamped
before its transaction commits. Each load also reads the per-server counts, pauses and
retry times, and the patient and image labels of exams it has not seen yet.
This module imports no Qt.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from eyer_desktop.core.errors import ExamError
from eyer_desktop.core.exams import Exam, ExamType, ImageRole, Laterality
from eyer_desktop.core.library import ExamLibrary, patient_display_name
from eyer_desktop.core.manifest import MANIFEST_NAME, load_exam
from eyer_desktop.core.outbox import (
    STEREO_ITEM_PREFIX,
    Delivery,
    DeliveryState,
    Outbox,
    PauseReason,
)

logger = logging.getLogger(__name__)

LOOKBACK_S = 2.0
"""How far before the newest change seen an incremental load starts, in s.
It covers a writer of this process that stamped its change and then waited
for the outbox's lock, which each transaction holds for milliseconds. A change
missed anyway shows in the counts check of the refresher."""

_PENDING_STATES = (DeliveryState.QUEUED, DeliveryState.PAUSED, DeliveryState.FAILED)


@dataclass(frozen=True)
class ImageInfo:
    """Labels of one delivered instance, for the Activity page.

    Attributes:
        number: Position of the image among the exam's images of the same
            eye, from 1; 0 for a stereo relationship instance.
        role: The image's role; None for a stereo relationship instance.
    """

    laterality: Laterality | None
    number: int
    role: ImageRole | None


@dataclass(frozen=True)
class ExamInfo:
    """Labels of one exam, for the Activity page.

    Attributes:
        found: False when the exam is no longer in the library (or cannot be
            read); the other values are then empty.
    """

    exam_id: str
    found: bool
    patient_name: str = ""
    captured_at: dt.datetime | None = None
    exam_type: ExamType | None = None
    images: Mapping[str, ImageInfo] = field(default_factory=dict)
    """Labels of the exam's instances, by image id (``stereo/R`` included)."""


@dataclass(frozen=True)
class ServerSummary:
    """The outbox's state of one server.

    Attributes:
        counts: Deliveries in each state; every state is present.
        paused: Why the server is paused; empty when it is not.
        next_retry_at: Earliest due time of a delivery waiting to be retried
            after a failure, as Unix time in seconds.
        last_error: Error text of the most recently changed delivery that is
            failed or waiting to be retried.
    """

    key: str
    counts: Mapping[DeliveryState, int]
    paused: frozenset[PauseReason] = frozenset()
    next_retry_at: float | None = None
    last_error: str | None = None

    def count(self, *states: DeliveryState) -> int:
        """Return the number of deliveries in any of ``states``."""
        return sum(self.counts.get(state, 0) for state in states)


@dataclass(frozen=True)
class ActivitySnapshot:
    """The result of one load.

    Attributes:
        deliveries: Every delivery (full load) or the changed ones, by id.
        full: Whether ``deliveries`` is the whole outbox.
        exams: Labels of the exams seen so far by the loader.
        servers: Summary of every server with deliveries or a pause.
        newest_update: The newest ``updated_at`` among ``deliveries``, or the
            value passed in when nothing changed.
    """

    deliveries: list[Delivery]
    full: bool
    exams: Mapping[str, ExamInfo]
    servers: Mapping[str, ServerSummary]
    newest_update: float | None

    @property
    def total(self) -> int:
        """Number of deliveries in the outbox when it was read."""
        return sum(sum(summary.counts.values()) for summary in self.servers.values())


def exam_info(exam: Exam) -> ExamInfo:
    """Return the labels of a loaded exam."""
    images = {}
    numbers = dict.fromkeys(Laterality, 0)
    for image in exam.images:
        numbers[image.laterality] += 1
        number = numbers[image.laterality]
        images[image.image_id] = ImageInfo(image.laterality, number, image.role)
    for eye in (Laterality.RIGHT, Laterality.LEFT):
        images[STEREO_ITEM_PREFIX + eye] = ImageInfo(eye, 0, None)
    return ExamInfo(
        exam_id=exam.exam_id,
        found=True,
        patient_name=patient_display_name(exam.patient.name),
        captured_at=exam.captured_at,
        exam_type=exam.exam_type,
        images=images,
    )


def server_summaries(outbox: Outbox) -> dict[str, ServerSummary]:
    """Return the summary of every server with deliveries or a pause."""
    counts = outbox.counts()
    paused = outbox.paused_servers()
    retry_at: dict[str, float] = {}
    errors: dict[str, tuple[float, str]] = {}
    for delivery in outbox.deliveries(states=_PENDING_STATES):
        key = delivery.server_key
        if delivery.error_class is None or not delivery.last_error:
            continue
        if delivery.state is DeliveryState.QUEUED and delivery.next_attempt_at:
            retry_at[key] = min(
                retry_at.get(key, delivery.next_attempt_at), delivery.next_attempt_at
            )
        if delivery.updated_at >= errors.get(key, (0.0, ""))[0]:
            errors[key] = (delivery.updated_at, delivery.last_error)

    summaries = {}
    for key in sorted(set(counts) | set(paused)):
        summaries[key] = ServerSummary(
            key=key,
            counts=counts.get(key, dict.fromkeys(DeliveryState, 0)),
            paused=paused.get(key, frozenset()),
            next_retry_at=retry_at.get(key),
            last_error=errors[key][1] if key in errors else None,
        )
    return summaries


class ActivityLoader:
    """Reads deliveries and labels for the Activity page.

    Call :meth:`load` from one worker at a time: the exam labels it caches are
    not locked. A cached label is read again when a load meets a delivery of
    its exam and the exam's manifest has changed or is gone, so a deleted
    exam's patient name leaves the page. A full load checks every exam, and
    so does any load after the library folder changed (an exam added or
    deleted, by this process or another).
    """

    def __init__(self, outbox: Outbox, library: ExamLibrary) -> None:
        self.outbox = outbox
        self.library = library
        self._exams: dict[str, ExamInfo] = {}
        self._stamps: dict[str, tuple[int, int] | None] = {}
        self._library_stamp: int | None = None

    def load(self, since: float | None = None) -> ActivitySnapshot:
        """Read the outbox: everything when ``since`` is None, else the changes.

        Args:
            since: The newest ``updated_at`` the caller has seen.
        """
        full = since is None
        if since is None:
            deliveries = self.outbox.deliveries()
        else:
            deliveries = self.outbox.deliveries(updated_since=since - LOOKBACK_S)
        servers = server_summaries(self.outbox)
        exam_ids = {delivery.exam_id for delivery in deliveries}
        library_stamp = _modified_ns(self.library.root)
        if library_stamp != self._library_stamp:
            self._library_stamp = library_stamp
            exam_ids |= set(self._exams)
        self._learn_exams(exam_ids)

        newest = max((d.updated_at for d in deliveries), default=since)
        if since is not None and newest is not None:
            newest = max(newest, since)
        return ActivitySnapshot(
            deliveries=deliveries,
            full=full,
            exams=dict(self._exams),
            servers=servers,
            newest_update=newest,
        )

    def _learn_exams(self, exam_ids: Iterable[str]) -> None:
        # Exam folders are named by exam id, so each is read directly rather
        # than through ExamLibrary.load, which lists the library per call.
        for exam_id in set(exam_ids):
            folder = self.library.root / exam_id
            stamp = _manifest_stamp(folder)
            if exam_id in self._exams and self._stamps.get(exam_id) == stamp:
                continue
            info = ExamInfo(exam_id, found=False)
            if stamp is not None:
                try:
                    info = exam_info(load_exam(folder))
                except ExamError as err:
                    # The message may quote patient data, so only its type is logged.
                    logger.info(
                        "Exam %s of the outbox cannot be read: %s",
                        exam_id,
                        type(err).__name__,
                    )
            self._exams[exam_id] = info
            self._stamps[exam_id] = stamp


def _modified_ns(folder: Path) -> int | None:
    """Return the modification time of a folder, or None when it is missing."""
    try:
        return folder.stat().st_mtime_ns
    except OSError:
        return None


def _manifest_stamp(folder: Path) -> tuple[int, int] | None:
    """Return the modification time and size of an exam's manifest, or None
    when it is gone.
    """
    try:
        status = (folder / MANIFEST_NAME).stat()
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size
