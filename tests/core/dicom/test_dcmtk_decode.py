"""Converted files decoded by dcmtk, an independent JPEG decoder."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageChops

from eyer_desktop.core.dicom import convert_exam
from tests.core.dicom.conftest import (
    CREATED_AT,
    JPEG_DIR,
    fundus_jpeg,
    single_image_exam,
)

DCMJ2PNM = shutil.which("dcmj2pnm")

pytestmark = pytest.mark.skipif(
    DCMJ2PNM is None, reason="dcmtk (dcmj2pnm) is not installed; install dcmtk"
)

SOURCES = {
    "4:2:0": fundus_jpeg(seed=31),
    "4:2:2 with EXIF and IPTC": (JPEG_DIR / "iptc_422.jpg").read_bytes(),
    "4:4:4 with ICC and restarts": (
        JPEG_DIR / "flower2_444_icc_restart.jpg"
    ).read_bytes(),
    "greyscale": fundus_jpeg(seed=32, mode="L"),
}


def dcmtk_decode(path: Path, output: Path) -> Image.Image:
    assert DCMJ2PNM is not None
    subprocess.run(
        [DCMJ2PNM, "+on", str(path), str(output)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with Image.open(output) as image:
        image.load()
        return image.copy()


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_dcmtk_decodes_source_pixels(kind: str, tmp_path: Path) -> None:
    source = SOURCES[kind]
    exam = single_image_exam(tmp_path / "exam", source)
    (file,) = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)

    decoded = dcmtk_decode(file.path, tmp_path / "decoded.png")

    with Image.open(exam.image_path(exam.images[0])) as original:
        assert decoded.size == original.size
        assert decoded.mode == original.mode
        assert ImageChops.difference(decoded, original).getbbox() is None
