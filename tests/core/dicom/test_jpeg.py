"""JPEG marker parsing and metadata stripping."""

from __future__ import annotations

import contextlib
import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from eyer_desktop.core.dicom.jpeg import (
    EOI,
    SOI,
    JpegFormatError,
    parse_jpeg,
    read_exif_orientation,
)
from tests.core.dicom.conftest import JPEG_DIR, draw_fundus, jpeg_bytes

SOS = b"\xff\xda"


def corpus(name: str) -> bytes:
    return (JPEG_DIR / name).read_bytes()


def segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def insert_after_soi(data: bytes, *segments: bytes) -> bytes:
    return data[:2] + b"".join(segments) + data[2:]


def without_jfif(data: bytes) -> bytes:
    """Remove the JFIF APP0 segment that Pillow writes first."""
    assert data[2:4] == b"\xff\xe0"
    (length,) = struct.unpack_from(">H", data, 4)
    return data[:2] + data[4 + length :]


def marker_codes(data: bytes) -> list[int]:
    """Return the marker codes of the segments before the first scan."""
    codes = []
    position = 2
    while data[position + 1] != 0xDA:
        codes.append(data[position + 1])
        (length,) = struct.unpack_from(">H", data, position + 2)
        position += 2 + length
    return codes


def test_baseline_header_values() -> None:
    structure = parse_jpeg(corpus("hopper_420.jpg"))

    assert structure.sof_marker == 0xC0
    assert structure.precision == 8
    assert (structure.rows, structure.columns) == (128, 128)
    assert len(structure.components) == 3
    assert structure.components[0].horizontal_sampling == 2
    assert structure.colour_model() == "YCbCr"
    assert structure.baseline_problem() is None


def test_rows_and_columns_come_from_frame_header() -> None:
    structure = parse_jpeg(jpeg_bytes(draw_fundus(300, 200)))

    assert structure.rows == 200
    assert structure.columns == 300


def test_strip_removes_exif_iptc_and_comments() -> None:
    source = corpus("flower2_444_icc_restart.jpg")
    source = insert_after_soi(source, segment(0xFE, b"a comment"))

    stripped = parse_jpeg(source).stripped

    codes = marker_codes(stripped)
    assert all(not 0xE0 <= code <= 0xEF for code in codes)
    assert 0xFE not in codes
    assert 0xDD in codes  # the restart interval is kept


def test_strip_keeps_jfif_app0() -> None:
    stripped = parse_jpeg(corpus("hopper_exif_orientation_6.jpg")).stripped

    assert marker_codes(stripped)[0] == 0xE0
    assert stripped[6:11] == b"JFIF\x00"
    assert 0xE1 not in marker_codes(stripped)


def test_strip_leaves_scan_data_unchanged() -> None:
    source = corpus("iptc_422.jpg")

    stripped = parse_jpeg(source).stripped

    scan = stripped[stripped.index(SOS) :]
    assert source.endswith(scan)
    assert stripped.startswith(SOI)
    assert stripped.endswith(EOI)


def test_strip_decodes_to_same_pixels() -> None:
    source = corpus("flower2_444_icc_restart.jpg")

    stripped = parse_jpeg(source).stripped

    with (
        Image.open(io.BytesIO(source)) as original,
        Image.open(io.BytesIO(stripped)) as embedded,
    ):
        assert embedded.tobytes() == original.tobytes()


def test_data_after_eoi_is_dropped() -> None:
    source = corpus("hopper_420.jpg")

    stripped = parse_jpeg(source + b"\x00\x00trailing second image").stripped

    assert stripped.endswith(EOI)
    assert stripped == parse_jpeg(source).stripped


def test_picture_after_multi_picture_eoi_is_dropped() -> None:
    first = corpus("hopper_420.jpg")
    mpf = b"MPF\x00II*\x00\x08\x00\x00\x00"
    segment = b"\xff\xe2" + (2 + len(mpf)).to_bytes(2, "big") + mpf
    announcing = first[:2] + segment + first[2:]
    second = corpus("hopper_gray.jpg")

    stripped = parse_jpeg(announcing + second).stripped

    assert stripped == parse_jpeg(first).stripped


def test_second_picture_after_eoi_is_dropped() -> None:
    first = corpus("hopper_420.jpg")

    stripped = parse_jpeg(first + corpus("hopper_gray.jpg")).stripped

    assert stripped == parse_jpeg(first).stripped


def test_damaged_marker_in_scan_is_rejected() -> None:
    source = bytearray(corpus("hopper_420.jpg"))
    stuffed = source.index(b"\xff\x00", source.index(SOS) + 2)
    source[stuffed + 1] = 0x12

    with pytest.raises(JpegFormatError, match=r"reserved marker 0xFF12"):
        parse_jpeg(bytes(source))


def test_start_of_scan_inside_scan_is_rejected() -> None:
    source = corpus("hopper_420.jpg")
    inside = source.index(SOS) + 600

    with pytest.raises(JpegFormatError, match="damaged"):
        parse_jpeg(source[:inside] + SOS + source[inside:])


def test_restart_marker_without_interval_is_rejected() -> None:
    source = bytearray(corpus("hopper_420.jpg"))
    stuffed = source.index(b"\xff\x00", source.index(SOS) + 2)
    source[stuffed + 1] = 0xD3

    with pytest.raises(JpegFormatError, match=r"unexpected marker 0xFFD3"):
        parse_jpeg(bytes(source))


def test_restart_marker_out_of_order_is_rejected() -> None:
    source = bytearray(corpus("flower2_444_icc_restart.jpg"))
    first = source.index(b"\xff\xd0", source.rindex(SOS))
    source[first + 1] = 0xD1

    with pytest.raises(JpegFormatError, match=r"0xFFD1 .* out of order"):
        parse_jpeg(bytes(source))


def test_cut_scan_with_restarts_is_rejected() -> None:
    source = corpus("flower2_444_icc_restart.jpg")
    scan = source.rindex(SOS)

    with pytest.raises(JpegFormatError, match="restart markers where"):
        parse_jpeg(source[: (scan + len(source)) // 2] + EOI)


def test_cut_picture_before_whole_one_is_rejected() -> None:
    source = corpus("hopper_420.jpg")

    with pytest.raises(JpegFormatError, match=r"0xFFD8"):
        parse_jpeg(source[: len(source) // 2] + source)


def test_start_of_image_before_eoi_is_rejected() -> None:
    source = corpus("hopper_420.jpg")

    with pytest.raises(JpegFormatError, match=r"0xFFD8"):
        parse_jpeg(source[:-2] + SOI + EOI)


def test_comment_after_scan_is_stripped() -> None:
    source = corpus("hopper_420.jpg")
    comment = b"\xff\xfe\x00\x06late"

    stripped = parse_jpeg(source[:-2] + comment + EOI).stripped

    assert stripped == parse_jpeg(source).stripped


def test_jfif_thumbnail_is_dropped() -> None:
    source = corpus("hopper_gray.jpg")
    jfif_with_thumbnail = (
        b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01" + bytes([1, 1]) + b"\xff\x00\x00"
    )
    position = 2
    (length,) = struct.unpack_from(">H", source, position + 2)
    with_thumbnail = (
        source[:2] + segment(0xE0, jfif_with_thumbnail) + source[4 + length :]
    )

    stripped = parse_jpeg(with_thumbnail).stripped

    (app0_length,) = struct.unpack_from(">H", stripped, 4)
    assert app0_length == 16
    assert stripped[18:20] == b"\x00\x00"
    assert parse_jpeg(stripped).rows == 128


def test_icc_profile_reassembled_from_seven_chunks() -> None:
    source = corpus("icc_profile_big_progressive.jpg")

    structure = parse_jpeg(source)

    with Image.open(io.BytesIO(source)) as image:
        expected = image.info["icc_profile"]
    assert structure.icc_profile == expected
    assert structure.icc_profile is not None
    assert len(structure.icc_profile) > 6 * 65000


def test_icc_profile_with_missing_chunk_is_ignored() -> None:
    chunk = b"ICC_PROFILE\x00" + bytes([1, 2]) + b"first half"
    source = insert_after_soi(corpus("hopper_420.jpg"), segment(0xE2, chunk))

    assert parse_jpeg(source).icc_profile is None


@pytest.mark.parametrize(
    ("name", "orientation"),
    [
        ("hopper_exif_orientation_6.jpg", 6),
        ("hopper_exif_orientation_8.jpg", 8),
        ("iptc_422.jpg", 1),
        ("hopper_420.jpg", 1),
    ],
)
def test_exif_orientation(name: str, orientation: int) -> None:
    assert parse_jpeg(corpus(name)).exif_orientation == orientation


def test_exif_orientation_of_malformed_tiff_is_one() -> None:
    assert read_exif_orientation(b"II*\x00\xff\xff\xff\xff") == 1
    assert read_exif_orientation(b"XX") == 1


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("icc_profile_big_progressive.jpg", "a progressive (SOF2) JPEG"),
        ("hopper_16bit_qtables_sof1.jpg", "an extended sequential (SOF1) JPEG"),
        ("libjpegturbo_testimgari_arithmetic.jpg", "an arithmetic-coded"),
        ("libjpegturbo_monkey12_12bit.jpg", "SOF1"),
        ("mozilla_jpg-cmyk-2_adobe0.jpg", "CMYK"),
        ("pil_sample_cmyk_ycck_adobe.jpg", "YCCK"),
        ("hopper_exif_orientation_6.jpg", "EXIF orientation 6"),
    ],
)
def test_baseline_problem_names_the_kind(name: str, problem: str) -> None:
    found = parse_jpeg(corpus(name)).baseline_problem()

    assert found is not None
    assert problem in found


def test_adobe_transform_zero_is_rgb() -> None:
    adobe_rgb = segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00")
    plain = without_jfif(jpeg_bytes(draw_fundus(64, 64)))

    structure = parse_jpeg(insert_after_soi(plain, adobe_rgb))

    assert structure.colour_model() == "RGB"
    assert structure.baseline_problem() == "an RGB JPEG without colour transform"


def test_jfif_outweighs_adobe_transform() -> None:
    adobe_rgb = segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x00")
    with_jfif = jpeg_bytes(draw_fundus(64, 64))

    structure = parse_jpeg(insert_after_soi(with_jfif, adobe_rgb))

    assert structure.colour_model() == "YCbCr"
    assert structure.baseline_problem() is None


def test_colours_that_depend_on_app14_are_flagged() -> None:
    adobe_ycbcr = segment(0xEE, b"Adobe\x00\x64\x00\x00\x00\x00\x01")
    colour = bytearray(without_jfif(jpeg_bytes(draw_fundus(64, 64))))
    sof = colour.index(b"\xff\xc0")
    for index, identifier in enumerate(b"RGB"):
        colour[sof + 10 + 3 * index] = identifier
    scan = colour.index(SOS)
    for index, identifier in enumerate(b"RGB"):
        colour[scan + 5 + 2 * index] = identifier

    structure = parse_jpeg(insert_after_soi(bytes(colour), adobe_ycbcr))

    assert structure.colour_model() == "YCbCr"
    assert structure.colour_model(with_app14=False) == "RGB"
    assert structure.baseline_problem() == (
        "a JPEG whose colours depend on its Adobe APP14 segment"
    )


def test_rgb_component_ids_without_markers_are_rgb() -> None:
    source = corpus("hopper_gray.jpg")
    grey = parse_jpeg(source)
    assert grey.colour_model() == "grey"

    colour = bytearray(without_jfif(jpeg_bytes(draw_fundus(64, 64))))
    sof = colour.index(b"\xff\xc0")
    for index, identifier in enumerate(b"RGB"):
        colour[sof + 10 + 3 * index] = identifier
    scan = colour.index(SOS)
    for index, identifier in enumerate(b"RGB"):
        colour[scan + 5 + 2 * index] = identifier

    assert parse_jpeg(bytes(colour)).colour_model() == "RGB"


def test_oversubscribed_huffman_table_is_rejected() -> None:
    source = bytearray(corpus("hopper_gray.jpg"))
    dht = source.index(b"\xff\xc4")
    # Three codes of length 1 cannot exist in a binary prefix code.
    source[dht + 5] = 3

    with pytest.raises(JpegFormatError, match="Huffman"):
        parse_jpeg(bytes(source))


def test_missing_huffman_tables_are_flagged() -> None:
    source = corpus("hopper_gray.jpg")
    kept = []
    position = 2
    while source[position + 1] != 0xDA:
        (length,) = struct.unpack_from(">H", source, position + 2)
        if source[position + 1] != 0xC4:
            kept.append(source[position : position + 2 + length])
        position += 2 + length
    stream = SOI + b"".join(kept) + source[position:]

    problem = parse_jpeg(stream).baseline_problem()

    assert problem == "a JPEG without Huffman tables (Motion JPEG style)"


def test_damaged_file_from_fuzzer_is_rejected() -> None:
    with pytest.raises(JpegFormatError, match="damaged"):
        parse_jpeg(corpus("jpegdecoder_corrupt_huffman.jpg"))


def test_truncated_progressive_is_rejected() -> None:
    with pytest.raises(JpegFormatError, match="truncated"):
        parse_jpeg(corpus("pillow_truncated_progressive.jpg"))


def test_every_truncation_is_rejected() -> None:
    source = corpus("hopper_gray.jpg")

    for length in range(len(source)):
        with pytest.raises(JpegFormatError):
            parse_jpeg(source[:length])


def test_not_a_jpeg_is_rejected() -> None:
    with pytest.raises(JpegFormatError, match="SOI"):
        parse_jpeg(corpus("mozilla_jpg-size-6x6_is_png.jpg"))


def test_eoi_before_scan_is_rejected() -> None:
    with pytest.raises(JpegFormatError, match="before any image data"):
        parse_jpeg(SOI + EOI)


def test_zero_height_frame_is_rejected() -> None:
    source = bytearray(corpus("hopper_gray.jpg"))
    sof = source.index(b"\xff\xc0")
    source[sof + 5 : sof + 7] = b"\x00\x00"

    with pytest.raises(JpegFormatError, match="DNL"):
        parse_jpeg(bytes(source))


def test_zero_width_frame_is_rejected() -> None:
    source = bytearray(corpus("hopper_gray.jpg"))
    sof = source.index(b"\xff\xc0")
    source[sof + 7 : sof + 9] = b"\x00\x00"

    with pytest.raises(JpegFormatError, match=r"declares a width of 0$"):
        parse_jpeg(bytes(source))


@pytest.mark.parametrize("precision", [0, 1])
def test_impossible_precision_is_rejected(precision: int) -> None:
    source = bytearray(corpus("hopper_gray.jpg"))
    sof = source.index(b"\xff\xc0")
    source[sof + 4] = precision

    with pytest.raises(JpegFormatError, match=f"declares {precision} bits per sample"):
        parse_jpeg(bytes(source))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_format_errors(tail: bytes) -> None:
    with contextlib.suppress(JpegFormatError):
        parse_jpeg(SOI + tail)


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=2, max_value=5352), st.integers(0, 255))
def test_single_byte_damage_raises_only_format_errors(
    position: int, value: int
) -> None:
    source = bytearray(corpus("hopper_gray.jpg"))
    source[position] = value
    with contextlib.suppress(JpegFormatError):
        parse_jpeg(bytes(source))
