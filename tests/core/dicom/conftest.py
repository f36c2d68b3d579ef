"""Exams for the converter tests, with JPEGs drawn by Pillow.

Every drawing is seeded, so each run produces the same bytes.
"""

from __future__ import annotations

import datetime as dt
import io
import random
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from PIL import Image, ImageDraw

from eyer_desktop.core.exams import (
    ClinicDocument,
    DeviceInfo,
    Diopters,
    Exam,
    ExamImage,
    ExamType,
    ExamUids,
    ImageRole,
    Laterality,
    Patient,
    PatientName,
    Sex,
    StereoPair,
    image_sop_instance_uid,
)

DATA_DIR = Path(__file__).parents[2] / "data"
JPEG_DIR = DATA_DIR / "jpeg"

CAPTURED_AT = dt.datetime(
    2024, 5, 17, 14, 30, 12, tzinfo=dt.timezone(dt.timedelta(hours=-3))
)
CREATED_AT = dt.datetime(2024, 5, 18, 9, 0, 0, tzinfo=dt.UTC)

ANAMNESIS = {
    "diabetes": "yes",
    "hypertension": "no",
    "notes": "Paciente relata “visão turva” — há 2 anos… sem dor",
}


def draw_fundus(
    width: int = 480, height: int = 480, *, seed: int = 0, mode: str = "RGB"
) -> Image.Image:
    """Draw a fundus-like picture: an orange disc, an optic disc and vessels."""
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (0, 0, 0))
    draw = ImageDraw.Draw(image)
    radius = min(width, height) * 0.47
    cx, cy = width / 2, height / 2
    draw.ellipse(
        (cx - radius, cy - radius, cx + radius, cy + radius),
        fill=(200 + rng.randrange(40), 80 + rng.randrange(40), 30),
    )
    disc_x, disc_y = cx + radius * 0.4, cy + rng.uniform(-8, 8)
    for _ in range(8):
        angle_end = (rng.uniform(-radius, radius), rng.uniform(-radius, radius))
        draw.line(
            (disc_x, disc_y, cx + angle_end[0] * 0.9, cy + angle_end[1] * 0.9),
            fill=(120, 20, 20),
            width=rng.randrange(2, 6),
        )
    disc_radius = radius * 0.12
    draw.ellipse(
        (
            disc_x - disc_radius,
            disc_y - disc_radius,
            disc_x + disc_radius,
            disc_y + disc_radius,
        ),
        fill=(250, 220, 160),
    )
    return image.convert(mode) if mode != "RGB" else image


def jpeg_bytes(image: Image.Image, **options: Any) -> bytes:
    """Encode a Pillow image as JPEG with the given save options."""
    buffer = io.BytesIO()
    options.setdefault("quality", 90)
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def fundus_jpeg(
    width: int = 480,
    height: int = 480,
    *,
    seed: int = 0,
    mode: str = "RGB",
    **options: Any,
) -> bytes:
    """Draw a fundus and return it as baseline JPEG bytes."""
    return jpeg_bytes(draw_fundus(width, height, seed=seed, mode=mode), **options)


@dataclass
class ImageSpec:
    """One image file of a test exam."""

    name: str
    data: bytes
    laterality: Laterality = Laterality.RIGHT
    role: ImageRole = ImageRole.CAPTURE
    sources: tuple[str, ...] = ()


@dataclass
class ExamSpec:
    """Everything a test exam is made from; fields default to a full exam."""

    exam_type: ExamType
    images: Sequence[ImageSpec]
    stereo_pairs: list[tuple[str, str]] = field(default_factory=list)
    patient_name: PatientName = field(
        default_factory=lambda: PatientName("Conceição", "Maria José", "da Silva")
    )
    document: ClinicDocument = field(
        default_factory=lambda: ClinicDocument("CPF", "12345678900")
    )
    sex: Sex | None = Sex.FEMALE
    birth_date: dt.date | None = dt.date(1958, 3, 2)
    anamnesis: dict[str, Any] = field(default_factory=lambda: dict(ANAMNESIS))
    diopters: Diopters = field(default_factory=lambda: Diopters(-1.25, 0.5))
    pupil_dilated: bool | None = True
    device: DeviceInfo = field(
        default_factory=lambda: DeviceInfo(
            "EYR-000123", "2.4.1", "Clínica Olhos Saudáveis"
        )
    )
    sequence_number: int = 7
    captured_at: dt.datetime = CAPTURED_AT


def make_exam(folder: Path, spec: ExamSpec, name: str = "exam") -> Exam:
    """Write the spec's image files into ``folder`` and return the exam."""
    exam_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"test-exam/{name}"))
    images_dir = folder / "images"
    images_dir.mkdir(parents=True, exist_ok=True)
    image_id = {
        image.name: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{exam_id}/{image.name}"))
        for image in spec.images
    }
    images = []
    for image in spec.images:
        (images_dir / image.name).write_bytes(image.data)
        images.append(
            ExamImage(
                image_id=image_id[image.name],
                file=f"images/{image.name}",
                laterality=image.laterality,
                sop_instance_uid=image_sop_instance_uid(exam_id, image_id[image.name]),
                role=image.role,
                sources=tuple(image_id[source] for source in image.sources),
            )
        )
    return Exam(
        exam_id=exam_id,
        exam_type=spec.exam_type,
        captured_at=spec.captured_at,
        patient=Patient(spec.patient_name, spec.document, spec.sex, spec.birth_date),
        images=images,
        uids=ExamUids.derive(exam_id),
        sequence_number=spec.sequence_number,
        anamnesis=spec.anamnesis,
        diopters=spec.diopters,
        pupil_dilated=spec.pupil_dilated,
        device=spec.device,
        stereo_pairs=[
            StereoPair(image_id[left], image_id[right])
            for left, right in spec.stereo_pairs
        ],
        folder=folder,
    )


def color_spec() -> ExamSpec:
    """A colour exam: one 4:2:0 image of each eye."""
    return ExamSpec(
        ExamType.COLOR,
        [
            ImageSpec("od.jpg", fundus_jpeg(seed=1), Laterality.RIGHT),
            ImageSpec("os.jpg", fundus_jpeg(seed=2), Laterality.LEFT),
        ],
    )


def red_free_grey_spec() -> ExamSpec:
    """A red-free exam with one-component JPEGs."""
    return ExamSpec(
        ExamType.RED_FREE,
        [
            ImageSpec("rf_od.jpg", fundus_jpeg(seed=3, mode="L"), Laterality.RIGHT),
            ImageSpec("rf_os.jpg", fundus_jpeg(seed=4, mode="L"), Laterality.LEFT),
        ],
    )


def red_free_colour_spec() -> ExamSpec:
    """A red-free exam whose camera wrote three-component JPEGs."""
    grey = draw_fundus(seed=5).getchannel("G")
    image = Image.merge("RGB", (grey, grey, grey))
    return ExamSpec(
        ExamType.RED_FREE,
        [ImageSpec("rf3_od.jpg", jpeg_bytes(image), Laterality.RIGHT)],
    )


def texture_spec() -> ExamSpec:
    """A texture exam: colour images with 4:2:2 subsampling."""
    return ExamSpec(
        ExamType.TEXTURE,
        [ImageSpec("tx_os.jpg", fundus_jpeg(seed=6, subsampling=1), Laterality.LEFT)],
    )


def stereo_spec() -> ExamSpec:
    """A stereo exam: one pair of the right eye, one pair of the left eye."""
    return ExamSpec(
        ExamType.STEREO,
        [
            ImageSpec("st_r1.jpg", fundus_jpeg(seed=7), Laterality.RIGHT),
            ImageSpec("st_r2.jpg", fundus_jpeg(seed=8), Laterality.RIGHT),
            ImageSpec("st_l1.jpg", fundus_jpeg(seed=9), Laterality.LEFT),
            ImageSpec("st_l2.jpg", fundus_jpeg(seed=10), Laterality.LEFT),
        ],
        stereo_pairs=[("st_r1.jpg", "st_r2.jpg"), ("st_l1.jpg", "st_l2.jpg")],
    )


def panoramic_spec() -> ExamSpec:
    """A panoramic exam: three fields of the right eye and their montage."""
    fields = [
        ImageSpec(f"field{n}.jpg", fundus_jpeg(seed=10 + n), Laterality.RIGHT)
        for n in (1, 2, 3)
    ]
    montage = ImageSpec(
        "montage.jpg",
        fundus_jpeg(1200, 640, seed=20),
        Laterality.RIGHT,
        ImageRole.MONTAGE,
        sources=("field1.jpg", "field2.jpg", "field3.jpg"),
    )
    return ExamSpec(ExamType.PANORAMIC, [*fields, montage])


EXAM_SPECS: dict[str, Callable[[], ExamSpec]] = {
    "color": color_spec,
    "red-free-grey": red_free_grey_spec,
    "red-free-colour": red_free_colour_spec,
    "texture": texture_spec,
    "stereo": stereo_spec,
    "panoramic": panoramic_spec,
}


@pytest.fixture
def exam_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "exam"
    folder.mkdir()
    return folder


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    return tmp_path / "out"


@pytest.fixture
def color_exam(exam_folder: Path) -> Exam:
    return make_exam(exam_folder, color_spec())


def single_image_exam(
    folder: Path,
    data: bytes,
    *,
    exam_type: ExamType = ExamType.COLOR,
    name: str = "image.jpg",
) -> Exam:
    """Return a one-image exam of the right eye holding these bytes."""
    spec = ExamSpec(exam_type, [ImageSpec(name, data, Laterality.RIGHT)])
    return make_exam(folder, spec)
