"""Synthetic fundus photographs and sample exams, drawn with Pillow alone.

The drawings look like retinal camera images, so conversion, thumbnails and
viewers can be tried without patient data. Each has a dark surround outside
the circular field and an orange-red retina that darkens towards the edge. A
bright yellowish optic disc sits on the nasal side, a darker macula on the
temporal side, and branching vessels (arteries lighter, veins darker) leave
the disc. A seed makes every image and every sample exam reproducible.

Geometry is drawn for a right eye, where the disc appears to the right of the
macula, and mirrored for a left eye. Lengths are in units of the field radius,
so that a small test image looks like a large one.
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageOps

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
from eyer_desktop.core.library import ExamLibrary

logger = logging.getLogger(__name__)

DEFAULT_SIZE = 1600
JPEG_QUALITY = 92
MIN_SIZE = 64
DEMO_SIZE = 800
"""Side of the demo's sample images in pixels: large enough to look real,
quick to draw."""

# Field radius as a fraction of the image side: the corners stay dark.
_FIELD_FRACTION = 0.47
# Positions relative to the field centre, in field radii, for a right eye.
_DISC_OFFSET = (0.42, -0.04)
_FOVEA_OFFSET = (-0.26, 0.05)
_DISC_RADIUS = 0.13
_MACULA_RADIUS = 0.3
# Offsets of the fields of a panoramic exam, in field radii, for a right eye.
_PANORAMIC_FIELDS = ((0.0, 0.0), (0.0, -0.75), (0.0, 0.75), (-0.8, 0.0), (0.8, 0.0))
# Horizontal shift between the two viewing channels of a stereo pair.
_STEREO_SHIFT = 0.04

_SINGLE_IMAGE_TYPES = (ExamType.COLOR, ExamType.RED_FREE, ExamType.TEXTURE)

_RETINA_COLOR = (218, 98, 42)
_DISC_COLOR = (240, 172, 108)
_CUP_COLOR = (252, 226, 176)
# Multipliers (out of 255) that vessels apply to the colour beneath them.
_VEIN_TINT = (142, 78, 96)
_ARTERY_TINT = (210, 140, 128)
_MACULA_TINT = (170, 140, 150)


@dataclass(frozen=True)
class _Layout:
    """Landmark positions of one drawn retina, in pixels of its canvas."""

    width: int
    height: int
    radius: float
    pole: tuple[float, float]

    def at(self, offset: tuple[float, float]) -> tuple[float, float]:
        """Return the canvas point at ``offset`` field radii from the pole."""
        return (
            self.pole[0] + offset[0] * self.radius,
            self.pole[1] + offset[1] * self.radius,
        )

    @property
    def disc(self) -> tuple[float, float]:
        return self.at(_DISC_OFFSET)

    @property
    def fovea(self) -> tuple[float, float]:
        return self.at(_FOVEA_OFFSET)


# Drawing one retina


def draw_fundus(
    laterality: Laterality,
    *,
    size: int = DEFAULT_SIZE,
    seed: int | None = 0,
    exam_type: ExamType = ExamType.COLOR,
) -> Image.Image:
    """Draw a fundus photograph of one eye, centred between disc and macula.

    Returns a ``size`` by ``size`` image: RGB for a colour or texture exam, one
    grey channel for a red-free exam. Stereo and panoramic exams take several
    images; :func:`draw_stereo_pair` and :func:`draw_panoramic` draw them.
    """
    if exam_type not in _SINGLE_IMAGE_TYPES:
        raise ValueError(
            f"exam type {exam_type} needs several images; use draw_stereo_pair "
            "or draw_panoramic"
        )
    rng = random.Random(seed)
    layout = _layout_for_fields(size, [(0.0, 0.0)])
    retina = _draw_retina(layout, rng)
    photo = _photograph(retina, layout.pole, size, rng)
    if exam_type is ExamType.RED_FREE:
        photo = red_free(photo)
    elif exam_type is ExamType.TEXTURE:
        photo = _texture_enhanced(photo)
    return _mirror_for(laterality, photo)


def draw_stereo_pair(
    laterality: Laterality, *, size: int = DEFAULT_SIZE, seed: int | None = 0
) -> tuple[Image.Image, Image.Image]:
    """Draw the left and right viewing channels of a stereo pair of one eye."""
    rng = random.Random(seed)
    shift = _STEREO_SHIFT
    layout = _layout_for_fields(size, [(-shift, 0.0), (shift, 0.0)])
    retina = _draw_retina(layout, rng)
    left = _photograph(retina, layout.at((-shift, 0.0)), size, rng)
    right = _photograph(retina, layout.at((shift, 0.0)), size, rng)
    return _mirror_for(laterality, left), _mirror_for(laterality, right)


def draw_panoramic(
    laterality: Laterality, *, size: int = DEFAULT_SIZE, seed: int | None = 0
) -> tuple[list[Image.Image], Image.Image]:
    """Draw the fields of a panoramic exam of one eye and their stitched montage.

    Returns five fields (central, superior, inferior, temporal, nasal), each
    ``size`` pixels square, and a montage scaled to ``size`` pixels wide.
    """
    rng = random.Random(seed)
    layout = _layout_for_fields(size, list(_PANORAMIC_FIELDS))
    retina = _draw_retina(layout, rng)
    centres = [layout.at(offset) for offset in _PANORAMIC_FIELDS]
    fields = [_photograph(retina, centre, size, rng) for centre in centres]

    montage = Image.new("RGB", (layout.width, layout.height))
    mask = _field_mask(size)
    # The central field is pasted last, so it lies on top of the others.
    for centre, field in reversed(list(zip(centres, fields, strict=True))):
        corner = (round(centre[0] - size / 2), round(centre[1] - size / 2))
        montage.paste(field, corner, mask)
    height = round(layout.height * size / layout.width)
    montage = montage.resize((size, height), Image.Resampling.LANCZOS)

    fields = [_mirror_for(laterality, field) for field in fields]
    return fields, _mirror_for(laterality, montage)


def red_free(image: Image.Image) -> Image.Image:
    """Return the red-free (green channel) version of a colour fundus image.

    The result is one grey channel with its contrast stretched, like a
    photograph taken through a green filter.
    """
    green = image.getchannel("G")
    return green.point([min(255, round(value * 1.5)) for value in range(256)])


def _texture_enhanced(photo: Image.Image) -> Image.Image:
    """Return a square colour photograph with its fine texture sharpened.

    NOTE: This imitates a texture exam with an unsharp mask. It is not the
    Eyer's own texture processing.
    """
    radius = max(1.0, photo.width / 320)
    sharpened = photo.filter(
        ImageFilter.UnsharpMask(radius=radius, percent=130, threshold=2)
    )
    # Sharpening brightens the field edge, so the surround is masked again.
    black = Image.new("RGB", photo.size)
    return Image.composite(sharpened, black, _field_mask(photo.width))


def encode_jpeg(image: Image.Image, *, quality: int = JPEG_QUALITY) -> bytes:
    """Encode an image as baseline JPEG, with 4:2:0 chroma subsampling for colour."""
    output = io.BytesIO()
    image.save(output, "JPEG", quality=quality, subsampling="4:2:0", progressive=False)
    return output.getvalue()


def _layout_for_fields(size: int, offsets: list[tuple[float, float]]) -> _Layout:
    """Return a canvas just large enough for photographs at these field offsets."""
    if size < MIN_SIZE:
        raise ValueError(f"image size {size} is too small; use at least {MIN_SIZE}")
    radius = size * _FIELD_FRACTION
    xs = [offset[0] * radius for offset in offsets]
    ys = [offset[1] * radius for offset in offsets]
    width = math.ceil(max(xs) - min(xs)) + size
    height = math.ceil(max(ys) - min(ys)) + size
    pole = (size / 2 - min(xs), size / 2 - min(ys))
    return _Layout(width, height, radius, pole)


def _mirror_for(laterality: Laterality, image: Image.Image) -> Image.Image:
    if laterality is Laterality.LEFT:
        return ImageOps.mirror(image)
    return image


def _draw_retina(layout: _Layout, rng: random.Random) -> Image.Image:
    """Draw the retina of a right eye, without illumination falloff or field edge."""
    size = (layout.width, layout.height)
    pigment = rng.uniform(0.88, 1.06)
    base_color = tuple(min(255, round(value * pigment)) for value in _RETINA_COLOR)
    retina = Image.new("RGB", size, base_color)
    retina = ImageChops.multiply(retina, _choroid_texture(size, layout.radius, rng))

    disc_tilt = rng.uniform(-0.03, 0.03)
    disc = layout.at((_DISC_OFFSET[0], _DISC_OFFSET[1] + disc_tilt))
    _darken_macula(retina, layout)
    _paint_disc(retina, disc, layout.radius * _DISC_RADIUS)

    veins, arteries = _vessel_trees(layout, disc, rng)
    vein_width = layout.radius * _DISC_RADIUS * 0.15
    artery_width = vein_width * 0.72
    _paint_vessels(retina, veins, _VEIN_TINT, vein_width, layout)
    _paint_vessels(retina, arteries, _ARTERY_TINT, artery_width, layout)
    _paint_artery_reflex(retina, arteries, artery_width, layout)
    return retina


def _choroid_texture(
    size: tuple[int, int], radius: float, rng: random.Random
) -> Image.Image:
    """Return a multiplier image of blotchy light and dark patches."""
    coarse = _smooth_noise(size, round(radius / 6), rng)
    fine = _smooth_noise(size, round(radius / 60), rng)
    mixed = ImageChops.add(coarse, fine, scale=2.0)
    bands = [
        mixed.point(
            [round(255 - strength * (255 - value) / 255) for value in range(256)]
        )
        for strength in (40, 75, 70)
    ]
    return Image.merge("RGB", bands)


def _smooth_noise(size: tuple[int, int], cell: int, rng: random.Random) -> Image.Image:
    """Return grey value noise whose blobs are about ``cell`` pixels across."""
    cell = max(2, cell)
    grid = (size[0] // cell + 2, size[1] // cell + 2)
    small = Image.frombytes("L", grid, rng.randbytes(grid[0] * grid[1]))
    return small.resize(size, Image.Resampling.BICUBIC)


def _darken_macula(retina: Image.Image, layout: _Layout) -> None:
    """Darken the macula around the fovea, most at its centre."""
    radius = layout.radius * _MACULA_RADIUS
    box = _box_around(layout.fovea, radius * 1.6)
    patch = retina.crop(box)
    mask = Image.new("L", patch.size, 0)
    draw = ImageDraw.Draw(mask)
    centre = (patch.width / 2, patch.height / 2)
    steps = 12
    for step in range(steps):
        ring = radius * (1 - step / steps)
        draw.ellipse(_box_around(centre, ring), fill=round(255 * (step + 1) / steps))
    mask = mask.filter(ImageFilter.GaussianBlur(radius * 0.25))

    tinted = ImageChops.multiply(patch, Image.new("RGB", patch.size, _MACULA_TINT))
    retina.paste(Image.composite(tinted, patch, mask), box[:2])


def _paint_disc(
    retina: Image.Image, centre: tuple[float, float], radius: float
) -> None:
    """Paint the optic disc, with its paler cup slightly temporal of centre."""
    box = _box_around(centre, radius * 1.8)
    patch = retina.crop(box)
    local = (patch.width / 2, patch.height / 2)
    blur = ImageFilter.GaussianBlur(max(0.6, radius * 0.05))

    rim = Image.new("L", patch.size, 0)
    ImageDraw.Draw(rim).ellipse(
        _ellipse_box(local, radius * 0.92, radius * 1.05), fill=255
    )
    patch = Image.composite(
        Image.new("RGB", patch.size, _DISC_COLOR), patch, rim.filter(blur)
    )

    cup = Image.new("L", patch.size, 0)
    cup_centre = (local[0] - radius * 0.12, local[1])
    ImageDraw.Draw(cup).ellipse(
        _ellipse_box(cup_centre, radius * 0.42, radius * 0.5), fill=220
    )
    cup = cup.filter(ImageFilter.GaussianBlur(max(0.6, radius * 0.2)))
    patch = Image.composite(Image.new("RGB", patch.size, _CUP_COLOR), patch, cup)
    retina.paste(patch, box[:2])


# Vessels


@dataclass
class _Vessel:
    """One unbranched stretch of vessel: its centre line and relative widths."""

    points: list[tuple[float, float]]
    widths: list[float]


@dataclass(frozen=True)
class _Trunk:
    """A main vessel leaving the disc, for a right eye.

    Angles are in radians with y pointing down. The curvature, in radians per
    field radius, fades over ``bend_length`` field radii.
    """

    angle: float
    curvature: float
    bend_length: float
    length: float
    width: float


_TRUNKS = (
    _Trunk(-math.pi / 2 - 0.25, -2.0, 0.8, 2.2, 1.0),  # superotemporal arcade
    _Trunk(math.pi / 2 + 0.25, 2.0, 0.8, 2.2, 1.0),  # inferotemporal arcade
    _Trunk(-0.7, 0.5, 1.0, 1.6, 0.7),  # superonasal
    _Trunk(0.7, -0.5, 1.0, 1.6, 0.7),  # inferonasal
    _Trunk(math.pi - 0.1, 0.0, 1.0, 0.4, 0.3),  # papillomacular
)


def _vessel_trees(
    layout: _Layout, disc: tuple[float, float], rng: random.Random
) -> tuple[list[_Vessel], list[_Vessel]]:
    """Grow the vein and artery trees of a right eye from the disc.

    Each trunk has a vein and an artery that leave the disc side by side. The
    temporal arcades bend around the macula, the nasal vessels run outwards.
    """
    veins: list[_Vessel] = []
    arteries: list[_Vessel] = []
    spread = layout.radius * _DISC_RADIUS * 0.25
    for trunk in _TRUNKS:
        for vessels, side in ((veins, 1.0), (arteries, -1.0)):
            start = (
                disc[0] + rng.uniform(-spread, spread),
                disc[1] + rng.uniform(-spread, spread),
            )
            grower = _VesselGrower(layout, rng, vessels)
            grower.grow(
                start,
                angle=trunk.angle + side * rng.uniform(0.05, 0.2),
                curvature=trunk.curvature / layout.radius,
                bend_length=trunk.bend_length * layout.radius,
                length=trunk.length * layout.radius * rng.uniform(0.85, 1.1),
                width=trunk.width,
            )
    return veins, arteries


class _VesselGrower:
    """Grows one vessel tree as a smooth random walk that branches recursively."""

    max_depth = 4
    min_width = 0.06

    def __init__(
        self, layout: _Layout, rng: random.Random, vessels: list[_Vessel]
    ) -> None:
        self.layout = layout
        self.rng = rng
        self.vessels = vessels
        self.step = layout.radius * 0.01
        self.avoid_radius = layout.radius * 0.16

    def grow(
        self,
        start: tuple[float, float],
        *,
        angle: float,
        curvature: float,
        bend_length: float,
        length: float,
        width: float,
        depth: int = 0,
    ) -> None:
        """Grow a vessel of relative ``width`` (1 for a main vein) and its branches.

        ``curvature`` is in radians per pixel and fades over ``bend_length``
        pixels. The walk stops at the fovea, which has no vessels, and at the
        canvas edge.
        """
        vessel = _Vessel([start], [width])
        self.vessels.append(vessel)
        x, y = start
        turn = 0.0
        travelled = 0.0
        next_branch = self._branch_gap()
        while travelled < length and width > self.min_width and self._inside(x, y):
            turn = 0.85 * turn + self.rng.gauss(0.0, 0.005)
            bend = curvature * math.exp(-travelled / bend_length)
            angle += bend * self.step + turn
            x += math.cos(angle) * self.step
            y += math.sin(angle) * self.step
            travelled += self.step
            width *= 0.998
            vessel.points.append((x, y))
            vessel.widths.append(width)
            if math.dist((x, y), self.layout.fovea) < self.avoid_radius:
                return

            if travelled >= next_branch and depth < self.max_depth:
                side = self.rng.choice((-1.0, 1.0))
                child_length = max(length - travelled, self.layout.radius * 0.4)
                self.grow(
                    (x, y),
                    angle=angle + side * self.rng.uniform(0.4, 0.95),
                    curvature=bend * self.rng.uniform(-0.4, 0.4),
                    bend_length=self.layout.radius,
                    length=child_length * self.rng.uniform(0.35, 0.7),
                    width=width * self.rng.uniform(0.45, 0.7),
                    depth=depth + 1,
                )
                width *= 0.93
                next_branch = travelled + self._branch_gap()

    def _branch_gap(self) -> float:
        return self.layout.radius * self.rng.uniform(0.12, 0.32)

    def _inside(self, x: float, y: float) -> bool:
        margin = self.layout.radius * 0.05
        return (
            -margin <= x <= self.layout.width + margin
            and -margin <= y <= self.layout.height + margin
        )


def _paint_vessels(
    retina: Image.Image,
    vessels: list[_Vessel],
    tint: tuple[int, int, int],
    main_width: float,
    layout: _Layout,
) -> None:
    """Darken the retina along the vessels with a multiplicative tint."""
    mask = Image.new("L", retina.size, 0)
    draw = ImageDraw.Draw(mask)
    for vessel in vessels:
        for points, width in _runs_of_equal_width(vessel, main_width):
            # Vessels under 1.5 px fade instead of drawing as hard 1 px lines.
            fill = 255 if width >= 1.5 else round(255 * max(width, 0.4) / 1.5)
            draw.line(points, fill=fill, width=max(1, round(width)), joint="curve")
    mask = mask.filter(ImageFilter.GaussianBlur(max(0.5, layout.radius / 700)))
    shade = Image.new("RGB", retina.size, tint)
    retina.paste(ImageChops.multiply(retina, shade), (0, 0), mask)


def _paint_artery_reflex(
    retina: Image.Image,
    arteries: list[_Vessel],
    main_width: float,
    layout: _Layout,
) -> None:
    """Add the thin bright line that light reflected from artery walls makes."""
    mask = Image.new("L", retina.size, 0)
    draw = ImageDraw.Draw(mask)
    for vessel in arteries:
        for points, width in _runs_of_equal_width(vessel, main_width * 0.3):
            if width >= 1.0:
                draw.line(points, fill=70, width=round(width), joint="curve")
    mask = mask.filter(ImageFilter.GaussianBlur(max(0.5, layout.radius / 500)))
    retina.paste(Image.new("RGB", retina.size, (255, 196, 160)), (0, 0), mask)


def _runs_of_equal_width(
    vessel: _Vessel, scale: float
) -> Iterator[tuple[list[tuple[float, float]], float]]:
    """Split a vessel into polylines over which its width in pixels rounds equally."""
    start = 0
    for index in range(1, len(vessel.points)):
        width = vessel.widths[start] * scale
        at_end = index == len(vessel.points) - 1
        if at_end or round(vessel.widths[index] * scale * 2) != round(width * 2):
            yield vessel.points[start : index + 1], width
            start = index


# Taking the photograph


def _photograph(
    retina: Image.Image,
    centre: tuple[float, float],
    size: int,
    rng: random.Random,
) -> Image.Image:
    """Return the ``size`` square photograph of the retina around ``centre``.

    It adds the illumination falloff towards the field edge, mild sensor
    noise, and the dark surround outside the circular field.
    """
    left = round(centre[0] - size / 2)
    top = round(centre[1] - size / 2)
    photo = retina.crop((left, top, left + size, top + size))
    photo = ImageChops.multiply(photo, _illumination(size))
    photo = ImageChops.add(photo, _sensor_noise(size, rng), scale=1.0, offset=-128)
    return Image.composite(photo, Image.new("RGB", photo.size), _field_mask(size))


def _illumination(size: int) -> Image.Image:
    """Return the per-channel light falloff from the field centre to its edge.

    Green and blue fall off faster than red, so the edge looks redder.
    """
    distance = _radial_distance(size)
    bands = []
    for strength in (0.45, 0.7, 0.65):
        table = []
        for value in range(256):
            d = value / 200  # 200 is the field edge, see _radial_distance
            table.append(round(255 * max(0.0, 1.0 - strength * d**2.4)))
        bands.append(distance.point(table))
    return Image.merge("RGB", bands)


def _radial_distance(size: int) -> Image.Image:
    """Return the distance from the centre, 200 at the field edge, capped at 255."""
    small = 128
    field = small * _FIELD_FRACTION
    values = []
    for y in range(small):
        for x in range(small):
            distance = math.hypot(x + 0.5 - small / 2, y + 0.5 - small / 2)
            values.append(min(255, round(200 * distance / field)))
    image = Image.new("L", (small, small))
    image.putdata(values)
    return image.resize((size, size), Image.Resampling.BILINEAR)


def _sensor_noise(size: int, rng: random.Random) -> Image.Image:
    """Return grey noise centred on 128, a few levels either way."""
    raw = Image.frombytes("L", (size, size), rng.randbytes(size * size))
    noise = raw.point([128 + round((value - 128) / 40) for value in range(256)])
    return Image.merge("RGB", (noise, noise, noise))


def _field_mask(size: int) -> Image.Image:
    """Return the circular field, white inside, with a soft edge a few pixels wide."""
    mask = Image.new("L", (size, size), 0)
    centre = (size / 2, size / 2)
    ImageDraw.Draw(mask).ellipse(_box_around(centre, size * _FIELD_FRACTION), fill=255)
    return mask.filter(ImageFilter.GaussianBlur(max(0.7, size / 1000)))


def _box_around(
    centre: tuple[float, float], radius: float
) -> tuple[int, int, int, int]:
    return _ellipse_box(centre, radius, radius)


def _ellipse_box(
    centre: tuple[float, float], radius_x: float, radius_y: float
) -> tuple[int, int, int, int]:
    return (
        round(centre[0] - radius_x),
        round(centre[1] - radius_y),
        round(centre[0] + radius_x),
        round(centre[1] + radius_y),
    )


# Sample exams and image sets


@dataclass(frozen=True)
class _SamplePatient:
    name: PatientName
    document_type: str
    sex: Sex | None
    birth_date: dt.date


_SAMPLE_PATIENTS = (
    _SamplePatient(
        PatientName("Gonçalves", "Maria", "da Conceição"),
        "CPF",
        Sex.FEMALE,
        dt.date(1958, 11, 2),
    ),
    _SamplePatient(
        PatientName("Pereira", "João", "Antônio"), "CNS", Sex.MALE, dt.date(1971, 4, 19)
    ),
    _SamplePatient(
        PatientName("Araújo", "Antônio", "Carlos de"),
        "CPF",
        Sex.MALE,
        dt.date(1949, 8, 30),
    ),
    _SamplePatient(
        PatientName("Simões", "Luíza", "Helena"), "CNS", Sex.FEMALE, dt.date(1983, 1, 7)
    ),
    _SamplePatient(
        PatientName("Brandão", "Sebastião", "Magalhães"),
        "CPF",
        Sex.OTHER,
        dt.date(1966, 12, 24),
    ),
)
_SAMPLE_TYPES = (
    ExamType.COLOR,
    ExamType.RED_FREE,
    ExamType.TEXTURE,
    ExamType.STEREO,
    ExamType.PANORAMIC,
)
# Capture times of the samples start here, in the UTC offset of Brasília.
_SAMPLE_START = dt.datetime(
    2025, 3, 10, 8, 0, tzinfo=dt.timezone(dt.timedelta(hours=-3))
)
_COMPLAINTS = (
    "Visão embaçada há três meses",
    "Consulta de rotina, sem queixas",
    "Manchas escuras no olho direito",
    "Dificuldade para ler de perto",
)

SAMPLE_DEVICE = DeviceInfo(
    serial_number="EYER-SAMPLE-0001",
    software_version="samples 1",
    clinic_name="Clínica de Olhos São Lucas",
)


def write_sample_exams(
    target: ExamLibrary | Path,
    *,
    size: int = DEFAULT_SIZE,
    seed: int | None = 0,
    device: DeviceInfo = SAMPLE_DEVICE,
) -> list[Exam]:
    """Write one sample exam of each exam type, with images of both eyes.

    ``target`` is a library or the folder of one. Patients have accented
    Portuguese names, clinic documents, anamnesis and diopters. With a seed,
    exam ids, images and all other values are the same on every run.

    Returns the exams in the order written: color, red-free, texture, stereo
    and panoramic.
    """
    library = target if isinstance(target, ExamLibrary) else ExamLibrary(target)
    rng = random.Random(seed)
    sequence_number = library.next_sequence_number()
    exams = []
    for index, exam_type in enumerate(_SAMPLE_TYPES):
        patient = _SAMPLE_PATIENTS[index % len(_SAMPLE_PATIENTS)]
        exam, sources = _sample_exam(exam_type, patient, index, size, rng)
        exam.sequence_number = sequence_number + index
        exam.device = device
        exams.append(library.create_exam(exam, sources))
        logger.info("Sample %s exam %s written", exam_type, exam.exam_id)
    return exams


def write_sample_images(
    folder: Path,
    count: int,
    *,
    size: int = DEFAULT_SIZE,
    seed: int = 0,
    distinct: int = 8,
) -> list[Path]:
    """Write ``count`` colour fundus JPEG files, alternating right and left eyes.

    Drawing takes about 0.35 s per 1600-pixel image on a 2-core machine, so
    only ``distinct`` retinas are drawn and left eyes are their mirror images.
    Files after the first ``distinct`` get fresh sensor noise on top, so that no
    two files have the same bytes. Files are named ``sample-0001-R.jpg`` and so
    on.
    """
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    drawings = [
        draw_fundus(Laterality.RIGHT, size=size, seed=rng.getrandbits(32))
        for _ in range(min(count, max(1, distinct)))
    ]
    paths = []
    for index in range(count):
        eye = Laterality.RIGHT if index % 2 == 0 else Laterality.LEFT
        image = _mirror_for(eye, drawings[index % len(drawings)])
        if index >= len(drawings):
            image = ImageChops.add(image, _sensor_noise(size, rng), offset=-128)
        path = folder / f"sample-{index + 1:04d}-{eye}.jpg"
        path.write_bytes(encode_jpeg(image))
        paths.append(path)
    return paths


def _sample_exam(
    exam_type: ExamType,
    sample: _SamplePatient,
    index: int,
    size: int,
    rng: random.Random,
) -> tuple[Exam, dict[str, Path | bytes]]:
    """Return a sample exam and the JPEG bytes of each of its images."""
    exam_id = _random_uuid(rng)
    exam = Exam(
        exam_id=exam_id,
        exam_type=exam_type,
        captured_at=_SAMPLE_START
        + dt.timedelta(days=index, minutes=rng.randrange(0, 9 * 60)),
        patient=Patient(
            name=sample.name,
            document=ClinicDocument(
                sample.document_type, _document_number(sample.document_type, rng)
            ),
            sex=sample.sex,
            birth_date=sample.birth_date,
        ),
        images=[],
        uids=ExamUids.derive(exam_id),
        anamnesis=_anamnesis(rng),
        diopters=Diopters(right=_diopter(rng), left=_diopter(rng)),
        pupil_dilated=rng.choice((True, False, None)),
    )
    sources: dict[str, Path | bytes] = {}
    for eye in (Laterality.RIGHT, Laterality.LEFT):
        _add_sample_images(exam, eye, size, rng, sources)
    return exam, sources


def _add_sample_images(
    exam: Exam,
    eye: Laterality,
    size: int,
    rng: random.Random,
    sources: dict[str, Path | bytes],
) -> None:
    """Draw the images of one eye for the exam's type and add them to it."""

    def add(image: Image.Image, name: str, **extra: Any) -> ExamImage:
        image_id = _random_uuid(rng)
        exam_image = ExamImage(
            image_id=image_id,
            file=f"images/{eye}-{name}.jpg",
            laterality=eye,
            sop_instance_uid=image_sop_instance_uid(exam.exam_id, image_id),
            **extra,
        )
        exam.images.append(exam_image)
        sources[image_id] = encode_jpeg(image)
        return exam_image

    seed = rng.getrandbits(32)
    if exam.exam_type is ExamType.STEREO:
        left_view, right_view = draw_stereo_pair(eye, size=size, seed=seed)
        pair = StereoPair(
            left_image_id=add(left_view, "stereo-left").image_id,
            right_image_id=add(right_view, "stereo-right").image_id,
        )
        exam.stereo_pairs.append(pair)
    elif exam.exam_type is ExamType.PANORAMIC:
        fields, montage = draw_panoramic(eye, size=size, seed=seed)
        field_ids = tuple(
            add(field, f"field-{number}").image_id
            for number, field in enumerate(fields, start=1)
        )
        add(montage, "montage", role=ImageRole.MONTAGE, sources=field_ids)
    else:
        image = draw_fundus(eye, size=size, seed=seed, exam_type=exam.exam_type)
        add(image, "1")


def _random_uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _diopter(rng: random.Random) -> float:
    return rng.randrange(-16, 13) * 0.25


def _anamnesis(rng: random.Random) -> dict[str, Any]:
    diabetes = rng.random() < 0.7
    answers: dict[str, Any] = {
        "diabetes": "yes" if diabetes else "no",
        "hypertension": rng.choice(("yes", "no")),
        "glaucoma_in_family": rng.choice(("yes", "no", "unknown")),
        "cataract_surgery": rng.choice(("yes", "no")),
        "complaint": rng.choice(_COMPLAINTS),
    }
    if diabetes:
        answers["diabetes_type"] = rng.choice((1, 2))
        answers["diabetes_years"] = rng.randrange(1, 30)
    return answers


def _document_number(document_type: str, rng: random.Random) -> str:
    """Return a random number with valid check digits: CPF or CNS."""
    if document_type == "CPF":
        digits = [rng.randrange(10) for _ in range(9)]
        for _ in range(2):
            weights = range(len(digits) + 1, 1, -1)
            remainder = sum(d * w for d, w in zip(digits, weights, strict=True)) % 11
            digits.append(0 if remainder < 2 else 11 - remainder)
        text = "".join(map(str, digits))
        return f"{text[:3]}.{text[3:6]}.{text[6:9]}-{text[9:]}"
    return _cns_number(rng)


def _cns_number(rng: random.Random) -> str:
    """Return a random definitive CNS (Brazilian health card) number."""
    while True:
        pis = [rng.choice((1, 2))] + [rng.randrange(10) for _ in range(10)]
        total = sum(d * w for d, w in zip(pis, range(15, 4, -1), strict=True))
        check = 11 - total % 11
        if check == 11:
            check = 0
        if check != 10:
            return "".join(map(str, pis)) + "000" + str(check)
