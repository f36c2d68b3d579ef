"""JPEG Baseline decoding and SOP class fallback rewriting."""

from __future__ import annotations

import io

import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.encaps import encapsulate
from pydicom.filebase import DicomBytesIO
from pydicom.uid import ExplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.errors import ConversionError
from eyer_desktop.core.net import StoreFallback
from eyer_desktop.core.net.transcode import decode_jpeg_baseline, rewrite_as_fallback
from tests.helpers.op_samples import (
    OP_8BIT_IMAGE_STORAGE,
    make_fundus_jpeg,
    make_op_dataset,
)


def pillow_pixels(jpeg: bytes) -> bytes:
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.tobytes()


def round_trip(dataset: object) -> object:
    buffer = DicomBytesIO()
    dataset.save_as(buffer, enforce_file_format=True)  # type: ignore[attr-defined]
    buffer.seek(0)
    return dcmread(buffer)


def test_decode_colour_gives_rgb_pixels() -> None:
    jpeg = make_fundus_jpeg(64, 48, seed=5)
    dataset = make_op_dataset(jpeg)

    native = decode_jpeg_baseline(dataset)

    assert native.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    assert native.PhotometricInterpretation == "RGB"
    assert native.SamplesPerPixel == 3
    assert native.PlanarConfiguration == 0
    assert native.LossyImageCompression == "01"
    assert native.LossyImageCompressionMethod == "ISO_10918_1"
    assert native.SOPInstanceUID == dataset.SOPInstanceUID
    assert native.PixelData == pillow_pixels(jpeg)
    assert dataset.PhotometricInterpretation == "YBR_FULL_422"


def test_decode_grey_gives_monochrome2() -> None:
    jpeg = make_fundus_jpeg(64, 48, grey=True)

    native = decode_jpeg_baseline(make_op_dataset(jpeg))

    assert native.PhotometricInterpretation == "MONOCHROME2"
    assert native.SamplesPerPixel == 1
    assert "PlanarConfiguration" not in native
    assert native.PixelData == pillow_pixels(jpeg)


def test_decode_pads_odd_length() -> None:
    jpeg = make_fundus_jpeg(5, 3)

    native = round_trip(decode_jpeg_baseline(make_op_dataset(jpeg)))

    assert len(native.PixelData) == 5 * 3 * 3 + 1  # type: ignore[attr-defined]


def test_decode_rejects_size_mismatch() -> None:
    dataset = make_op_dataset(make_fundus_jpeg(64, 48))
    dataset.Rows = 50

    with pytest.raises(ConversionError, match="64x48 pixels"):
        decode_jpeg_baseline(dataset)


def test_decode_rejects_uncompressed_dataset() -> None:
    native = decode_jpeg_baseline(make_op_dataset(make_fundus_jpeg(16, 16)))

    with pytest.raises(ConversionError, match="not JPEG Baseline"):
        decode_jpeg_baseline(native)


def test_decode_rejects_damaged_jpeg() -> None:
    dataset = make_op_dataset(make_fundus_jpeg(16, 16))
    dataset.PixelData = encapsulate([b"\xff\xd8 broken"])

    with pytest.raises(ConversionError, match="cannot be decoded"):
        decode_jpeg_baseline(dataset)


def test_fallback_vl_photographic_attributes() -> None:
    dataset = make_op_dataset(make_fundus_jpeg(16, 16))

    rewritten = rewrite_as_fallback(dataset, StoreFallback.VL_PHOTOGRAPHIC)

    assert rewritten.SOPClassUID == "1.2.840.10008.5.1.4.1.1.77.1.4"
    assert rewritten.file_meta.MediaStorageSOPClassUID == rewritten.SOPClassUID
    assert rewritten.SOPInstanceUID == dataset.SOPInstanceUID
    assert rewritten.Modality == "XC"
    assert rewritten.AcquisitionContextSequence == []
    assert rewritten.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert rewritten.PixelData == dataset.PixelData
    assert dataset.SOPClassUID == OP_8BIT_IMAGE_STORAGE


def test_fallback_secondary_capture_attributes() -> None:
    dataset = make_op_dataset(make_fundus_jpeg(16, 16))

    rewritten = rewrite_as_fallback(dataset, StoreFallback.SECONDARY_CAPTURE)

    assert rewritten.SOPClassUID == "1.2.840.10008.5.1.4.1.1.7"
    assert rewritten.ConversionType == "DI"
    assert rewritten.Modality == "OP"
    assert rewritten.SOPInstanceUID == dataset.SOPInstanceUID


def test_fallback_none_is_refused() -> None:
    dataset = make_op_dataset(make_fundus_jpeg(16, 16))

    with pytest.raises(ValueError, match=r"StoreFallback\.NONE"):
        rewrite_as_fallback(dataset, StoreFallback.NONE)
