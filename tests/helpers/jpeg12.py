"""12-bit JPEG test material: drawn 12-bit pictures, a real 12-bit encoder
and a real 12-bit decoder.

dcmtk's dcmcjpeg encodes 12-bit JPEG Extended (process 2 and 4) from a
12-bit DICOM image that pydicom writes, and dcmtk's dcmdjpeg decodes 12-bit
JPEG with its own 12-bit IJG library. Pillow decodes 8-bit JPEG only, so
these two are the reference on either side of the transcoder.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate, generate_frames
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit, JPEGExtended12Bit

from eyer_desktop.core.dicom.jpeg import parse_jpeg
from eyer_desktop.core.exams import Laterality
from eyer_desktop.core.samples import draw_fundus

DCMCJPEG = shutil.which("dcmcjpeg")
DCMDJPEG = shutil.which("dcmdjpeg")
DCMDUMP = shutil.which("dcmdump")

requires_dcmtk_jpeg = pytest.mark.skipif(
    DCMCJPEG is None or DCMDJPEG is None or DCMDUMP is None,
    reason="dcmtk (dcmcjpeg, dcmdjpeg, dcmdump) is not installed; install dcmtk",
)

SECONDARY_CAPTURE = "1.2.840.10008.5.1.4.1.1.7"
TOOL_TIMEOUT_S = 120


@dataclass(frozen=True)
class Samples:
    """Pixel samples of one image, interleaved by pixel.

    Attributes:
        columns: Width in pixels.
        rows: Height in pixels.
        bands: Samples per pixel (1 grey, 3 colour).
        values: The samples, row by row, pixel by pixel, band by band.
    """

    columns: int
    rows: int
    bands: int
    values: array[int]


@dataclass(frozen=True)
class Difference:
    """How far 8-bit samples are from 12-bit reference samples divided by 16."""

    mean: float
    max: int


def draw_twelve_bit_fundus(
    columns: int, rows: int, *, grey: bool = False, seed: int = 0
) -> Samples:
    """Draw a fundus photograph with 12-bit samples.

    The picture is drawn at twice the size and averaged down in floating
    point, so the samples use all 12 bits rather than multiples of 16.
    """
    side = max(columns, rows)
    drawn = draw_fundus(Laterality.RIGHT, size=2 * side, seed=seed)
    if grey:
        drawn = drawn.convert("L")
    bands = [
        band.convert("F")
        .resize((side, side), Image.Resampling.BOX)
        .crop((0, 0, columns, rows))
        for band in drawn.split()
    ]
    planes = [array("f", band.tobytes()) for band in bands]
    values = array("H", bytes(2 * columns * rows * len(planes)))
    for band_index, plane in enumerate(planes):
        values[band_index :: len(planes)] = array(
            "H", (min(4095, max(0, round(16 * value))) for value in plane)
        )
    return Samples(columns, rows, len(planes), values)


@dataclass(frozen=True)
class Dcmcjpeg12Bit:
    """A 12-bit JPEG stream that dcmcjpeg wrote, and the Lossy Image
    Compression Ratio that it wrote with it.
    """

    jpeg: bytes
    compression_ratio: float


def encode_with_dcmcjpeg(
    samples: Samples, folder: Path, options: Sequence[str] = ()
) -> Dcmcjpeg12Bit:
    """Encode 12-bit samples with ``dcmcjpeg +ee``.

    Colour samples are RGB, which dcmcjpeg converts to YCbCr. ``options``
    adds dcmcjpeg options, for example ``+s4`` (4:4:4) or ``+q 75``. The
    result is checked with dcmdump to be JPEG Extended with 12-bit samples.
    """
    assert DCMCJPEG is not None
    assert DCMDUMP is not None
    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "source.dcm"
    encoded = folder / "encoded.dcm"
    _native_dataset(samples).save_as(source, enforce_file_format=True)
    subprocess.run(
        [DCMCJPEG, "+ee", *options, str(source), str(encoded)],
        check=True,
        capture_output=True,
        timeout=TOOL_TIMEOUT_S,
    )

    dump = subprocess.run(
        [
            DCMDUMP,
            "--search",
            "TransferSyntaxUID",
            "--search",
            "BitsStored",
            str(encoded),
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=TOOL_TIMEOUT_S,
    ).stdout
    assert "=JPEGExtended:Process2+4" in dump, dump
    assert "(0028,0101) US 12" in dump, dump

    dataset = pydicom.dcmread(encoded)
    frame = next(generate_frames(dataset.PixelData, number_of_frames=1))
    jpeg = frame[: frame.rindex(b"\xff\xd9") + 2]
    return Dcmcjpeg12Bit(jpeg, float(dataset.LossyImageCompressionRatio))


def decode_with_dcmtk(jpeg: bytes, folder: Path, *, to_rgb: bool = True) -> Samples:
    """Decode an 8-bit or 12-bit JPEG stream with dcmtk's dcmdjpeg.

    A three-component stream is labelled YBR_FULL_422. With ``to_rgb``
    dcmdjpeg converts it to RGB; without, the samples stay as coded.
    """
    assert DCMDJPEG is not None
    structure = parse_jpeg(jpeg)
    bands = len(structure.components)
    twelve_bit = structure.precision == 12
    dataset = Dataset()
    dataset.SOPClassUID = SECONDARY_CAPTURE
    dataset.SOPInstanceUID = "2.25.1"
    dataset.SamplesPerPixel = bands
    dataset.PhotometricInterpretation = "YBR_FULL_422" if bands == 3 else "MONOCHROME2"
    if bands == 3:
        dataset.PlanarConfiguration = 0
    dataset.Rows = structure.rows
    dataset.Columns = structure.columns
    dataset.BitsAllocated = 16 if twelve_bit else 8
    dataset.BitsStored = structure.precision
    dataset.HighBit = structure.precision - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = encapsulate([jpeg])
    dataset["PixelData"].VR = "OB"
    transfer_syntax = JPEGExtended12Bit if twelve_bit else JPEGBaseline8Bit
    dataset.file_meta = _file_meta(dataset, transfer_syntax)

    folder.mkdir(parents=True, exist_ok=True)
    source = folder / "compressed.dcm"
    decoded = folder / "decoded.dcm"
    dataset.save_as(source, enforce_file_format=True)
    colour_option = "+cp" if to_rgb else "+cn"
    subprocess.run(
        [DCMDJPEG, colour_option, str(source), str(decoded)],
        check=True,
        capture_output=True,
        timeout=TOOL_TIMEOUT_S,
    )
    pixel_data = pydicom.dcmread(decoded).PixelData
    values = array("H", pixel_data if twelve_bit else array("B", pixel_data))
    if twelve_bit and sys.byteorder == "big":
        values.byteswap()
    # 8-bit pixel data of odd length carries a padding byte.
    count = structure.columns * structure.rows * bands
    return Samples(structure.columns, structure.rows, bands, values[:count])


def pillow_samples(jpeg: bytes, *, ycbcr: bool = False) -> bytes:
    """Decode an 8-bit JPEG with Pillow; ``ycbcr`` skips the colour transform."""
    with Image.open(io.BytesIO(jpeg)) as image:
        if ycbcr:
            image.draft("YCbCr", image.size)
        image.load()
        assert not ycbcr or image.mode == "YCbCr", image.mode
        return image.tobytes()


def difference(decoded: bytes, reference: Samples) -> Difference:
    """Compare 8-bit samples with 12-bit reference samples divided by 16."""
    assert len(decoded) == len(reference.values)
    errors = [
        abs(value - min(255, (expected + 8) >> 4))
        for value, expected in zip(decoded, reference.values, strict=True)
    ]
    return Difference(sum(errors) / len(errors), max(errors))


def _native_dataset(samples: Samples) -> Dataset:
    dataset = Dataset()
    dataset.SOPClassUID = SECONDARY_CAPTURE
    dataset.SOPInstanceUID = "2.25.2"
    dataset.StudyInstanceUID = "2.25.3"
    dataset.SeriesInstanceUID = "2.25.4"
    dataset.Modality = "OT"
    dataset.ConversionType = "WSD"
    dataset.PatientName = ""
    dataset.PatientID = ""
    dataset.SamplesPerPixel = samples.bands
    dataset.PhotometricInterpretation = "RGB" if samples.bands == 3 else "MONOCHROME2"
    if samples.bands == 3:
        dataset.PlanarConfiguration = 0
    dataset.Rows = samples.rows
    dataset.Columns = samples.columns
    dataset.BitsAllocated = 16
    dataset.BitsStored = 12
    dataset.HighBit = 11
    dataset.PixelRepresentation = 0
    values = array("H", samples.values)
    if sys.byteorder == "big":
        values.byteswap()
    dataset.PixelData = values.tobytes()
    dataset.file_meta = _file_meta(dataset, ExplicitVRLittleEndian)
    return dataset


def _file_meta(dataset: Dataset, transfer_syntax: str) -> FileMetaDataset:
    meta = FileMetaDataset()
    meta.TransferSyntaxUID = transfer_syntax
    meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return meta


# Changing marker segments of a JPEG stream


def scan_data_start(jpeg: bytes) -> int:
    """Return where the entropy-coded data of the first scan starts."""
    header = jpeg.index(b"\xff\xda")
    return header + 2 + int.from_bytes(jpeg[header + 2 : header + 4], "big")


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """Insert an EXIF APP1 segment with this orientation after SOI."""
    exif = Image.Exif()
    exif[0x0112] = orientation
    payload = exif.tobytes()
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + segment + jpeg[2:]


def with_frame_size(jpeg: bytes, columns: int, rows: int) -> bytes:
    """Change the number of lines and samples per line of the frame header."""
    structure = parse_jpeg(jpeg)
    marker = bytes([0xFF, structure.sof_marker])
    size = jpeg.index(marker) + 5
    patched = rows.to_bytes(2, "big") + columns.to_bytes(2, "big")
    return jpeg[:size] + patched + jpeg[size + 4 :]
