"""The exam data model: one patient's capture session and its images.

These classes hold already validated values. Reading and writing them as an
exam folder's ``exam.json`` manifest, with validation of every field, lives in
:mod:`eyer_desktop.core.manifest`.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from eyer_desktop.core.uids import derive_uid


class ExamType(StrEnum):
    COLOR = "color"
    RED_FREE = "red-free"
    TEXTURE = "texture"
    STEREO = "stereo"
    PANORAMIC = "panoramic"


class Laterality(StrEnum):
    RIGHT = "R"
    LEFT = "L"


class Sex(StrEnum):
    MALE = "M"
    FEMALE = "F"
    OTHER = "O"


class ImageRole(StrEnum):
    CAPTURE = "capture"
    """An image as the camera took it."""
    MONTAGE = "montage"
    """A panoramic mosaic stitched from the capture images listed in its sources."""


@dataclass
class PatientName:
    family: str
    given: str = ""
    middle: str = ""


@dataclass
class ClinicDocument:
    """The identifier a clinic registers patients by (for example CPF, CNS, MRN)."""

    type: str
    number: str


@dataclass
class Patient:
    name: PatientName
    document: ClinicDocument
    sex: Sex | None = None
    birth_date: dt.date | None = None


@dataclass
class Diopters:
    """Focus diopters the camera used for each eye, None where not recorded."""

    right: float | None = None
    left: float | None = None


@dataclass
class DeviceInfo:
    serial_number: str = ""
    software_version: str = ""
    clinic_name: str = ""


@dataclass
class ExamImage:
    """One image file of an exam.

    Attributes:
        image_id: UUID of the image, unique within the exam and never reused.
        file: Path of the image file relative to the exam folder.
        laterality: The eye in the picture.
        sop_instance_uid: UID of the image's DICOM instance.
        role: Whether the image was captured or stitched from others.
        sources: For a montage, the image ids of the fields it was stitched from.
    """

    image_id: str
    file: str
    laterality: Laterality
    sop_instance_uid: str
    role: ImageRole = ImageRole.CAPTURE
    sources: tuple[str, ...] = ()


@dataclass
class StereoPair:
    """Two images of the same eye forming a stereo pair.

    "Left" and "right" name the viewing channel, not the eye.
    """

    left_image_id: str
    right_image_id: str


@dataclass
class WorklistLink:
    """Values an exam takes from the modality worklist entry it was created from."""

    accession_number: str = ""
    study_instance_uid: str = ""
    requested_procedure_id: str = ""
    requested_procedure_description: str = ""
    scheduled_procedure_step_id: str = ""
    referring_physician_name: str = ""
    patient_id: str = ""
    issuer_of_patient_id: str = ""


@dataclass
class ExamUids:
    """The DICOM UIDs of an exam's study, series and non-image instances."""

    study_instance_uid: str
    series_instance_uid: str
    montage_series_instance_uid: str
    stereo_series_instance_uid: str
    stereo_relationship_instance_uid: str
    synchronization_frame_of_reference_uid: str

    @classmethod
    def derive(cls, exam_id: str) -> ExamUids:
        """Return the UIDs derived from the exam id alone."""
        return cls(
            study_instance_uid=derive_uid(exam_id, "study"),
            series_instance_uid=derive_uid(exam_id, "series"),
            montage_series_instance_uid=derive_uid(exam_id, "series/montage"),
            stereo_series_instance_uid=derive_uid(exam_id, "series/stereo"),
            stereo_relationship_instance_uid=derive_uid(exam_id, "stereo"),
            synchronization_frame_of_reference_uid=derive_uid(exam_id, "sync"),
        )


def image_sop_instance_uid(exam_id: str, image_id: str) -> str:
    """Return the SOP Instance UID of one image, derived from both ids."""
    return derive_uid(exam_id, f"image/{image_id}")


def new_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Exam:
    """One patient's capture session.

    Attributes:
        captured_at: Capture date and time, timezone-aware (the device's UTC offset).
        anamnesis: Conditions and answers, as a JSON object (for example
            ``{"diabetes": "yes", "hypertension": "no"}``).
        sequence_number: The exam's sequential number on the device, written as
            SeriesNumber.
        folder: The exam folder, when the exam was read from or saved to disk.
    """

    exam_id: str
    exam_type: ExamType
    captured_at: dt.datetime
    patient: Patient
    images: list[ExamImage]
    uids: ExamUids
    sequence_number: int = 1
    anamnesis: dict[str, Any] = field(default_factory=dict)
    diopters: Diopters = field(default_factory=Diopters)
    pupil_dilated: bool | None = None
    device: DeviceInfo = field(default_factory=DeviceInfo)
    stereo_pairs: list[StereoPair] = field(default_factory=list)
    worklist: WorklistLink | None = None
    folder: Path | None = None

    def image(self, image_id: str) -> ExamImage:
        """Return the image with this id; raise KeyError when there is none."""
        for image in self.images:
            if image.image_id == image_id:
                return image
        raise KeyError(image_id)

    def image_path(self, image: ExamImage) -> Path:
        """Return the absolute path of an image file of this exam."""
        if self.folder is None:
            raise ValueError(f"exam {self.exam_id} has no folder")
        return self.folder / image.file
