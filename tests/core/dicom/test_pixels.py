"""Passthrough or re-encoding of real-world JPEG and PNG inputs."""

from __future__ import annotations

import io
import re
import struct
import zlib

import pytest
from PIL import Image, ImageChops, ImageCms, ImageOps, ImageStat

from eyer_desktop.core.dicom.jpeg import parse_jpeg
from eyer_desktop.core.dicom.pixels import (
    ImageInputError,
    encode_image,
    image_size,
)
from tests.core.dicom.conftest import DATA_DIR, JPEG_DIR, draw_fundus, jpeg_bytes
from tests.helpers.jpeg12 import (
    scan_data_start,
    with_exif_orientation,
    with_frame_size,
)

SOS = b"\xff\xda"


def corpus(name: str) -> bytes:
    return (JPEG_DIR / name).read_bytes()


def decode(data: bytes) -> Image.Image:
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        return image.copy()


def mean_difference(first: Image.Image, second: Image.Image) -> float:
    difference = ImageChops.difference(first.convert("RGB"), second.convert("RGB"))
    return sum(ImageStat.Stat(difference).mean) / 3


def png_bytes(image: Image.Image) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("name", "samples"),
    [
        ("hopper_420.jpg", 3),
        ("iptc_422.jpg", 3),
        ("flower2_444_icc_restart.jpg", 3),
        ("hopper_gray.jpg", 1),
    ],
)
def test_baseline_is_passed_through(name: str, samples: int) -> None:
    source = corpus(name)

    encoded = encode_image(source)

    assert encoded.reencoded_from is None
    assert encoded.samples_per_pixel == samples
    assert len(encoded.compression_ratios) == 1
    scan = encoded.jpeg[encoded.jpeg.index(SOS) :]
    assert source.endswith(scan)
    assert decode(encoded.jpeg).tobytes() == decode(source).tobytes()


def test_passthrough_does_not_decode_pixels() -> None:
    source = bytearray(corpus("hopper_420.jpg"))
    scan = source.index(SOS) + 14
    # Overwrite entropy-coded data: a decoder would fail or produce garbage,
    # but the structure stays valid because no 0xFF byte is written.
    source[scan : scan + 2000] = bytes([0x5A]) * 2000

    encoded = encode_image(bytes(source))

    assert encoded.reencoded_from is None
    assert bytes(source).endswith(encoded.jpeg[encoded.jpeg.index(SOS) :])


def test_passthrough_of_real_fundus_photograph() -> None:
    source = DATA_DIR / "fundus" / "wikimedia_fundus_normal_right_eye_600px.jpg"
    data = source.read_bytes()

    encoded = encode_image(data)

    assert encoded.reencoded_from is None
    assert decode(encoded.jpeg).tobytes() == decode(data).tobytes()


def test_photometric_interpretation_follows_components() -> None:
    colour = encode_image(corpus("hopper_420.jpg"))
    grey = encode_image(corpus("hopper_gray.jpg"))

    assert colour.photometric_interpretation == "YBR_FULL_422"
    assert grey.photometric_interpretation == "MONOCHROME2"


def test_subsampling_444_is_still_ybr_full_422() -> None:
    encoded = encode_image(jpeg_bytes(draw_fundus(64, 64), subsampling=0))

    assert encoded.reencoded_from is None
    assert encoded.photometric_interpretation == "YBR_FULL_422"


def test_rows_and_columns_from_frame_header() -> None:
    encoded = encode_image(jpeg_bytes(draw_fundus(320, 240)))

    assert (encoded.rows, encoded.columns) == (240, 320)


def test_compression_ratio_uses_embedded_stream() -> None:
    encoded = encode_image(corpus("hopper_420.jpg"))

    assert encoded.compression_ratios[0] == pytest.approx(
        128 * 128 * 3 / len(encoded.jpeg)
    )


def test_icc_profile_and_color_space_of_passthrough() -> None:
    source = corpus("flower2_444_icc_restart.jpg")

    encoded = encode_image(source)

    assert encoded.icc_profile == decode(source).info["icc_profile"]
    assert encoded.color_space == "SRGB"


def test_grey_image_drops_icc_profile() -> None:
    srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    source = jpeg_bytes(draw_fundus(64, 64, mode="L"), icc_profile=srgb)

    encoded = encode_image(source)

    assert encoded.samples_per_pixel == 1
    assert encoded.icc_profile is None


def test_non_square_jfif_density_gives_aspect_ratio() -> None:
    encoded = encode_image(jpeg_bytes(draw_fundus(64, 64), dpi=(200, 100)))

    assert encoded.pixel_aspect_ratio == (200, 100)


def test_progressive_is_reencoded_as_baseline() -> None:
    source = corpus("icc_profile_big_progressive.jpg")

    encoded = encode_image(source)

    assert encoded.reencoded_from == "a progressive (SOF2) JPEG"
    assert encoded.reencode_quality == 95
    assert parse_jpeg(encoded.jpeg).baseline_problem() is None
    assert (encoded.rows, encoded.columns) == (250, 425)
    assert len(encoded.compression_ratios) == 2
    assert encoded.icc_profile == decode(source).info["icc_profile"]
    assert mean_difference(decode(encoded.jpeg), decode(source)) < 2


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("hopper_16bit_qtables_sof1.jpg", "extended sequential (SOF1)"),
        ("libjpegturbo_testimgari_arithmetic.jpg", "arithmetic-coded"),
        ("mozilla_jpg-cmyk-2_adobe0.jpg", "CMYK"),
        ("pil_sample_cmyk_ycck_adobe.jpg", "YCCK"),
    ],
)
def test_non_baseline_is_reencoded(name: str, kind: str) -> None:
    source = corpus(name)

    encoded = encode_image(source)

    assert encoded.reencoded_from is not None
    assert kind in encoded.reencoded_from
    assert parse_jpeg(encoded.jpeg).baseline_problem() is None
    assert encoded.samples_per_pixel == 3
    assert mean_difference(decode(encoded.jpeg), decode(source)) < 3


def test_adobe_rgb_without_transform_is_reencoded() -> None:
    adobe_rgb = b"\xff\xee\x00\x0eAdobe\x00\x64\x00\x00\x00\x00\x00"
    plain = jpeg_bytes(draw_fundus(64, 64))
    (jfif_length,) = struct.unpack_from(">H", plain, 4)
    source = plain[:2] + adobe_rgb + plain[4 + jfif_length :]

    encoded = encode_image(source)

    assert encoded.reencoded_from == "an RGB JPEG without colour transform"
    assert mean_difference(decode(encoded.jpeg), decode(source)) < 3


@pytest.mark.parametrize(
    "name", ["hopper_exif_orientation_6.jpg", "hopper_exif_orientation_8.jpg"]
)
def test_exif_rotation_of_corpus_is_applied(name: str) -> None:
    source = corpus(name)

    encoded = encode_image(source)

    upright = ImageOps.exif_transpose(decode(source))
    assert mean_difference(decode(encoded.jpeg), upright) < 3
    assert mean_difference(decode(encoded.jpeg), decode(source)) > 10


@pytest.mark.parametrize("orientation", [6, 8])
def test_exif_rotation_swaps_rows_and_columns(orientation: int) -> None:
    exif = Image.Exif()
    exif[0x0112] = orientation
    source = jpeg_bytes(draw_fundus(300, 200), exif=exif.tobytes())

    encoded = encode_image(source)

    assert (encoded.rows, encoded.columns) == (300, 200)
    assert encoded.reencoded_from == f"a JPEG with EXIF orientation {orientation}"


def test_png_named_jpg_is_reencoded() -> None:
    source = corpus("mozilla_jpg-size-6x6_is_png.jpg")

    encoded = encode_image(source)

    assert encoded.reencoded_from == "a PNG image"
    assert (encoded.rows, encoded.columns) == (6, 6)
    assert len(encoded.compression_ratios) == 1


def test_png_with_alpha_is_flattened_on_black() -> None:
    image = Image.new("RGBA", (32, 32), (255, 0, 0, 0))

    encoded = encode_image(png_bytes(image))

    assert encoded.samples_per_pixel == 3
    _, high = decode(encoded.jpeg).convert("L").getextrema()
    assert isinstance(high, int)
    assert high < 8


def test_sixteen_bit_png_is_scaled_not_clipped() -> None:
    image = Image.new("I;16", (16, 16), 32768)

    encoded = encode_image(png_bytes(image))

    assert encoded.samples_per_pixel == 1
    low, high = decode(encoded.jpeg).getextrema()
    assert isinstance(low, int)
    assert isinstance(high, int)
    assert 120 <= low <= high <= 135


def test_twelve_bit_is_transcoded_to_baseline() -> None:
    source = corpus("libjpegturbo_monkey12_12bit.jpg")

    encoded = encode_image(source)

    structure = parse_jpeg(encoded.jpeg)
    assert structure.baseline_problem() is None
    assert structure.precision == 8
    assert encoded.reencoded_from == "a 12-bit extended sequential (SOF1) JPEG"
    assert encoded.reencode_quality is None
    assert (encoded.rows, encoded.columns) == (227, 149)
    assert encoded.samples_per_pixel == 3
    assert encoded.icc_profile == parse_jpeg(source).icc_profile
    assert encoded.color_space == "SRGB"


def test_twelve_bit_ratios_count_12_bit_samples() -> None:
    source = corpus("libjpegturbo_monkey12_12bit.jpg")

    encoded = encode_image(source)

    samples = 227 * 149 * 3
    source_ratio, ratio = encoded.compression_ratios
    assert source_ratio == pytest.approx(
        samples * 1.5 / len(parse_jpeg(source).stripped)
    )
    assert ratio == pytest.approx(samples / len(encoded.jpeg))


def test_twelve_bit_exif_rotation_is_applied() -> None:
    source = with_exif_orientation(corpus("libjpegturbo_monkey12_12bit.jpg"), 6)

    encoded = encode_image(source)

    assert (encoded.rows, encoded.columns) == (149, 227)
    assert encoded.reencoded_from is not None
    assert "12-bit" in encoded.reencoded_from
    assert "EXIF orientation 6" in encoded.reencoded_from
    assert encoded.reencode_quality == 95
    assert len(encoded.compression_ratios) == 3
    assert parse_jpeg(encoded.jpeg).baseline_problem() is None


@pytest.mark.parametrize(
    ("name", "kind"),
    [
        ("libjpegtools_progressive.jpg", "12-bit progressive (SOF2)"),
        ("libjpegtools_arithmetic.jpg", "12-bit arithmetic-coded sequential (SOF9)"),
        ("libjpegtools_lossless.jpg", "12-bit lossless (SOF3)"),
    ],
)
def test_other_twelve_bit_kinds_are_rejected(name: str, kind: str) -> None:
    source = (DATA_DIR / "jpeg12" / name).read_bytes()

    with pytest.raises(ImageInputError, match=re.escape(kind)) as caught:
        encode_image(source)

    assert "export the image as an 8-bit JPEG" in str(caught.value)


def test_damaged_twelve_bit_is_rejected_with_reason() -> None:
    source = corpus("libjpegturbo_monkey12_12bit.jpg")
    start = scan_data_start(source)
    truncated = source[: (start + len(source)) // 2] + b"\xff\xd9"

    with pytest.raises(ImageInputError, match="not a valid JPEG: it is truncated"):
        encode_image(truncated)


def test_twelve_bit_bomb_is_rejected_before_decoding() -> None:
    source = with_frame_size(corpus("libjpegturbo_monkey12_12bit.jpg"), 65535, 65535)

    with pytest.raises(ImageInputError, match="65535x65535"):
        encode_image(source)


def test_truncated_is_rejected_with_reason() -> None:
    with pytest.raises(ImageInputError, match="truncated"):
        encode_image(corpus("pillow_truncated_progressive.jpg"))


def test_corrupt_is_rejected_with_reason() -> None:
    with pytest.raises(ImageInputError, match="not a valid JPEG"):
        encode_image(corpus("jpegdecoder_corrupt_huffman.jpg"))


def test_decompression_bomb_is_rejected_before_decoding() -> None:
    with pytest.raises(ImageInputError, match="65535x65535"):
        encode_image(corpus("jpegdecoder_max_size_65535x65535.jpg"))


def test_pixel_limit_applies_to_baseline_too() -> None:
    with pytest.raises(ImageInputError, match="megapixels"):
        encode_image(corpus("hopper_420.jpg"), max_pixels=128 * 127)


def test_png_bomb_is_rejected_from_its_header() -> None:
    header = struct.pack(">IIBBBBB", 70000, 70000, 8, 2, 0, 0, 0)
    ihdr = struct.pack(">I", 13) + b"IHDR" + header
    ihdr += struct.pack(">I", zlib.crc32(b"IHDR" + header))
    source = b"\x89PNG\r\n\x1a\n" + ihdr

    with pytest.raises(ImageInputError, match="70000x70000"):
        encode_image(source)


def test_unknown_format_is_rejected() -> None:
    with pytest.raises(ImageInputError, match="neither a JPEG nor a PNG"):
        encode_image(b"GIF89a" + bytes(32))


def test_image_size_reads_headers_only() -> None:
    assert image_size(corpus("jpegdecoder_max_size_65535x65535.jpg")) == (
        65535,
        65535,
    )
    assert image_size(corpus("mozilla_jpg-size-6x6_is_png.jpg")) == (6, 6)
