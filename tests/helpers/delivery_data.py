"""Exams and server views for the outbox, routing and delivery engine tests.

Ids are derived from names, so every run uses the same data.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from eyer_desktop.core.exams import (
    ClinicDocument,
    Exam,
    ExamImage,
    ExamType,
    ExamUids,
    Laterality,
    Patient,
    PatientName,
    image_sop_instance_uid,
)
from eyer_desktop.core.outbox import DeliveryItem, items_of_exam

_NAMESPACE = uuid.UUID("5f0c8a53-8d51-4a43-9a57-6d1f4a3c2b10")


def stable_id(name: str) -> str:
    """Return a UUID string derived from a name."""
    return str(uuid.uuid5(_NAMESPACE, name))


def make_exam(name: str, image_count: int = 2) -> Exam:
    """Return an exam with ``image_count`` images, its ids derived from ``name``."""
    exam_id = stable_id(f"exam/{name}")
    images = []
    for index in range(image_count):
        image_id = stable_id(f"image/{name}/{index}")
        images.append(
            ExamImage(
                image_id=image_id,
                file=f"image-{index}.jpg",
                laterality=Laterality.RIGHT if index % 2 == 0 else Laterality.LEFT,
                sop_instance_uid=image_sop_instance_uid(exam_id, image_id),
            )
        )
    return Exam(
        exam_id=exam_id,
        exam_type=ExamType.COLOR,
        captured_at=dt.datetime(2027, 1, 15, 9, 30, tzinfo=dt.UTC),
        patient=Patient(
            name=PatientName(family="Test", given="Patient"),
            document=ClinicDocument(type="MRN", number="000000"),
        ),
        images=images,
        uids=ExamUids.derive(exam_id),
    )


def make_items(name: str, image_count: int = 2) -> list[DeliveryItem]:
    """Return the delivery items of ``make_exam(name, image_count)``."""
    return items_of_exam(make_exam(name, image_count))


@dataclass(frozen=True)
class ServerStub:
    """A server as routing sees it, without the settings a sender would need."""

    key: str
    action: str
    is_storage: bool = True
    is_configured: bool = True
