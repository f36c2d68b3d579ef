"""EXIF reads that take damaged EXIF data as no data."""

from __future__ import annotations

import io
import warnings

import pytest
from PIL import Image

from eyer_desktop.core.exif import exif_from_tiff, exif_orientation, read_exif, upright
from tests.helpers.exif_files import NOT_TIFF, jpeg_with_exif, tiff_with_orientation


def test_damaged_exif_reads_as_empty(caplog: pytest.LogCaptureFixture) -> None:
    with Image.open(io.BytesIO(jpeg_with_exif(NOT_TIFF))) as image:
        exif = read_exif(image, "camera.jpg")

    assert dict(exif) == {}
    assert "Ignoring the EXIF data of camera.jpg" in caplog.text


@pytest.mark.parametrize(
    "tiff",
    [NOT_TIFF, b"MM\x00*\x00\x00\x00\x08\x00\x05", b"II*\x00\xff\xff\xff\x7f", b""],
    ids=["not-tiff", "cut-entries", "offset-past-end", "empty"],
)
def test_damaged_tiff_reads_quietly(tiff: bytes) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        exif = exif_from_tiff(tiff, "camera.jpg")

    assert caught == []
    assert exif_orientation(exif) == 1


def test_orientation_read_from_tiff() -> None:
    exif = exif_from_tiff(tiff_with_orientation(6), "camera.jpg")

    assert exif_orientation(exif) == 6


def test_upright_turns_rotated_image() -> None:
    with Image.open(io.BytesIO(jpeg_with_exif(tiff_with_orientation(6)))) as image:
        turned = upright(image)

    assert turned.size == (20, 40)


def test_upright_keeps_image_with_damaged_exif() -> None:
    with Image.open(io.BytesIO(jpeg_with_exif(NOT_TIFF))) as image:
        same = upright(image)

        assert same is image
        assert same.size == (40, 20)
