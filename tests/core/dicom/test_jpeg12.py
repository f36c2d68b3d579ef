"""12-bit JPEG transcoded to baseline 8-bit JPEG, checked against dcmtk.

The 12-bit sources come from four real encoders. These tests run dcmtk's
dcmcjpeg. PVRG-JPEG and libjpeg-tools wrote the files in tests/data/jpeg12
(make_files.py there writes them again), and libjpeg-turbo wrote the
monkey12 test image in tests/data/jpeg. dcmtk's 12-bit IJG decoder is the
reference for the pictures.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.uid import JPEGBaseline8Bit

from eyer_desktop.core.dicom import convert_exam
from eyer_desktop.core.dicom.jpeg import JpegFormatError, JpegStructure, parse_jpeg
from eyer_desktop.core.dicom.jpeg12 import (
    UnsupportedJpegError,
    _optimal_table,
    transcode_problem,
    transcode_to_baseline,
)
from eyer_desktop.core.dicom.pixels import encode_image
from eyer_desktop.core.errors import ConversionError
from tests.core.dicom.conftest import CREATED_AT, DATA_DIR, JPEG_DIR, single_image_exam
from tests.helpers.dicom3tools import dciodvfy, requires_dicom3tools
from tests.helpers.jpeg12 import (
    Difference,
    Samples,
    decode_with_dcmtk,
    difference,
    draw_twelve_bit_fundus,
    encode_with_dcmcjpeg,
    pillow_samples,
    requires_dcmtk_jpeg,
    scan_data_start,
    with_exif_orientation,
    with_frame_size,
)

JPEG12_DIR = DATA_DIR / "jpeg12"
MONKEY = JPEG_DIR / "libjpegturbo_monkey12_12bit.jpg"

# 12-bit files made by real encoders, by a short name.
FILE_SOURCES = {
    "libjpeg-turbo 4:2:0 ICC": MONKEY,
    "libjpeg-tools 4:2:0 restarts": JPEG12_DIR / "libjpegtools_ycbcr420_restart.jpg",
    "libjpeg-tools mixed sampling restarts": (
        JPEG12_DIR / "libjpegtools_ycbcr_mixed_sampling_restart.jpg"
    ),
    "libjpeg-tools grey restarts": JPEG12_DIR / "libjpegtools_grey_restart.jpg",
    "PVRG 4:2:0 separate scans restarts": (
        JPEG12_DIR / "pvrg_ycbcr420_separate_scans_restart.jpg"
    ),
    "PVRG mixed sampling separate scans restarts": (
        JPEG12_DIR / "pvrg_ycbcr_mixed_sampling_separate_scans_restart.jpg"
    ),
    "PVRG grey restarts": JPEG12_DIR / "pvrg_grey_restart.jpg",
}

# Drawn 12-bit fundus photographs that dcmcjpeg encodes: columns, rows,
# grey or colour, and dcmcjpeg options. 250x190 is not a whole number of
# MCUs in either direction.
DCMCJPEG_SOURCES: dict[str, tuple[int, int, bool, list[str]]] = {
    "dcmcjpeg grey": (250, 190, True, []),
    "dcmcjpeg 4:2:2": (250, 190, False, []),
    "dcmcjpeg 4:4:4": (250, 190, False, ["+s4"]),
    "dcmcjpeg 4:1:1": (250, 190, False, ["+n1"]),
    "dcmcjpeg quality 75": (250, 190, False, ["+q", "75"]),
    "dcmcjpeg fundus 640": (640, 640, False, []),
}

SOURCES = sorted([*FILE_SOURCES, *DCMCJPEG_SOURCES])

# Chroma sampling factors that Pillow's libjpeg-turbo and dcmtk's IJG library
# upsample differently: their chroma differs by up to 10 levels even when
# the same 8-bit stream is decoded, so only luma is compared across them.
MIXED_SAMPLING = {
    "libjpeg-tools mixed sampling restarts",
    "PVRG mixed sampling separate scans restarts",
}
GREY = {"dcmcjpeg grey", "libjpeg-tools grey restarts", "PVRG grey restarts"}

RGB_WITHOUT_TRANSFORM = JPEG12_DIR / "libjpegtools_rgb_adobe.jpg"

REJECTED = {
    "libjpegtools_progressive.jpg": "a 12-bit progressive (SOF2) JPEG",
    "libjpegtools_arithmetic.jpg": "a 12-bit arithmetic-coded sequential (SOF9) JPEG",
    "libjpegtools_lossless.jpg": "a 12-bit lossless (SOF3) JPEG",
}

# Bounds on the difference from dcmtk's 12-bit decode divided by 16 and
# rounded, per component, measured on every source above. The reference and
# the 8-bit decoder each round once, so many samples differ by 1, and
# requantizing adds at most half an 8-bit step to a coefficient where that
# step is above 1. dcmtk's 8-bit decode of the new stream and Pillow's gave
# the same numbers: worst mean 0.37 (monkey12 luma, whose 12-bit tables reach
# 61, an 8-bit step of 4) and worst maximum 2.
DECODE_MEAN = 0.4
DECODE_MAX = 2
# Pillow's colour transform starts from 8-bit Y, Cb and Cr, and the B and R
# equations multiply the chroma rounding error by 1.772 and 1.402. Against
# dcmtk's transform of the 12-bit samples the worst mean was 0.67 (monkey12,
# blue) and the worst maximum 4 (dcmcjpeg quality 75 and fundus 640, blue).
PILLOW_RGB_MEAN = 0.75
PILLOW_RGB_MAX = 4
# Re-encoding at quality 95 with 4:4:4 adds its own loss. The other re-encode
# tests of the converter allow a mean difference of 3 as well.
REENCODED_MEAN = 3


@pytest.fixture(scope="session")
def twelve_bit_source(
    tmp_path_factory: pytest.TempPathFactory,
) -> Callable[[str], bytes]:
    """Return a function that gives the 12-bit JPEG of a source name,
    running dcmcjpeg once per dcmcjpeg source.
    """
    encoded: dict[str, bytes] = {}

    def source(name: str) -> bytes:
        if name in FILE_SOURCES:
            return FILE_SOURCES[name].read_bytes()
        if name not in encoded:
            columns, rows, grey, options = DCMCJPEG_SOURCES[name]
            seed = list(DCMCJPEG_SOURCES).index(name)
            samples = draw_twelve_bit_fundus(columns, rows, grey=grey, seed=seed)
            folder = tmp_path_factory.mktemp("dcmcjpeg")
            encoded[name] = encode_with_dcmcjpeg(samples, folder, options).jpeg
        return encoded[name]

    return source


def needs_dcmtk(name: str) -> list[pytest.MarkDecorator]:
    return [requires_dcmtk_jpeg] if name in DCMCJPEG_SOURCES else []


def source_parameters() -> list[object]:
    return [pytest.param(name, marks=needs_dcmtk(name)) for name in SOURCES]


def band_differences(decoded: bytes, reference: Samples) -> list[Difference]:
    """Compare interleaved 8-bit samples with the reference, band by band."""
    count = reference.bands
    return [
        difference(
            decoded[index::count],
            Samples(
                reference.columns, reference.rows, 1, reference.values[index::count]
            ),
        )
        for index in range(count)
    ]


def sampling(structure: JpegStructure) -> list[tuple[int, int, int]]:
    return [
        (
            component.identifier,
            component.horizontal_sampling,
            component.vertical_sampling,
        )
        for component in structure.components
    ]


def assert_within(found: list[Difference], mean: float, maximum: int) -> None:
    for each in found:
        assert each.mean <= mean, found
        assert each.max <= maximum, found


# Structure of the new stream


@pytest.mark.parametrize("name", source_parameters())
def test_output_is_baseline_of_same_frame(
    name: str, twelve_bit_source: Callable[[str], bytes]
) -> None:
    source = twelve_bit_source(name)

    output = transcode_to_baseline(source)

    before = parse_jpeg(source)
    after = parse_jpeg(output)
    assert after.sof_marker == 0xC0
    assert after.precision == 8
    assert after.baseline_problem() is None
    assert (after.columns, after.rows) == (before.columns, before.rows)
    assert sampling(after) == sampling(before)
    assert b"\xff\xdd" not in output[: scan_data_start(output)]


def test_application_segments_are_copied() -> None:
    source = with_exif_orientation(MONKEY.read_bytes(), 6)

    output = transcode_to_baseline(source)

    before = parse_jpeg(source)
    after = parse_jpeg(output)
    assert after.icc_profile is not None
    assert after.icc_profile == before.icc_profile
    assert after.jfif_density == before.jfif_density
    assert after.exif_orientation == 6


def test_comment_is_dropped() -> None:
    source = MONKEY.read_bytes()
    comment = b"\xff\xfe\x00\x0aany text"
    source = source[:2] + comment + source[2:]

    output = transcode_to_baseline(source)

    assert b"any text" not in output


# Pixels against dcmtk


@requires_dcmtk_jpeg
@pytest.mark.parametrize("name", SOURCES)
def test_matches_dcmtk_through_one_decoder(
    name: str, twelve_bit_source: Callable[[str], bytes], tmp_path: Path
) -> None:
    source = twelve_bit_source(name)
    output = transcode_to_baseline(source)

    reference = decode_with_dcmtk(source, tmp_path / "source", to_rgb=False)
    decoded = decode_with_dcmtk(output, tmp_path / "output", to_rgb=False)

    eight_bit = bytes(decoded.values.tolist())
    assert_within(band_differences(eight_bit, reference), DECODE_MEAN, DECODE_MAX)


@requires_dcmtk_jpeg
@pytest.mark.parametrize("name", SOURCES)
def test_pillow_decode_matches_dcmtk(
    name: str, twelve_bit_source: Callable[[str], bytes], tmp_path: Path
) -> None:
    source = twelve_bit_source(name)
    output = transcode_to_baseline(source)

    reference = decode_with_dcmtk(source, tmp_path / "coded", to_rgb=False)
    colour = reference.bands == 3
    found = band_differences(pillow_samples(output, ycbcr=colour), reference)

    if name in MIXED_SAMPLING:
        found = found[:1]
    assert_within(found, DECODE_MEAN, DECODE_MAX)


@requires_dcmtk_jpeg
@pytest.mark.parametrize("name", sorted(set(SOURCES) - MIXED_SAMPLING - GREY))
def test_pillow_colours_match_dcmtk(
    name: str, twelve_bit_source: Callable[[str], bytes], tmp_path: Path
) -> None:
    source = twelve_bit_source(name)
    output = transcode_to_baseline(source)

    reference = decode_with_dcmtk(source, tmp_path / "rgb", to_rgb=True)
    found = band_differences(pillow_samples(output), reference)

    assert_within(found, PILLOW_RGB_MEAN, PILLOW_RGB_MAX)


@requires_dcmtk_jpeg
def test_rgb_without_transform_matches_dcmtk(tmp_path: Path) -> None:
    source = RGB_WITHOUT_TRANSFORM.read_bytes()

    transcoded = transcode_to_baseline(source)
    encoded = encode_image(source)

    reference = decode_with_dcmtk(source, tmp_path, to_rgb=False)
    assert parse_jpeg(transcoded).colour_model() == "RGB"
    assert_within(
        band_differences(pillow_samples(transcoded), reference),
        DECODE_MEAN,
        DECODE_MAX,
    )
    for found in band_differences(pillow_samples(encoded.jpeg), reference):
        assert found.mean < REENCODED_MEAN


# Damaged and unsupported streams


def test_invalid_code_is_reported() -> None:
    source = (JPEG12_DIR / "pvrg_grey_restart.jpg").read_bytes()
    start = scan_data_start(source)
    # Sixteen 1 bits start no code of any valid Huffman table.
    damaged = source[:start] + b"\xff\x00\xff\x00" + source[start:]

    with pytest.raises(JpegFormatError, match="invalid DC Huffman code in MCU 1"):
        transcode_to_baseline(damaged)


def test_truncated_data_is_reported() -> None:
    source = MONKEY.read_bytes()
    start = scan_data_start(source)
    truncated = source[: (start + len(source)) // 2] + b"\xff\xd9"

    with pytest.raises(JpegFormatError, match="truncated or damaged"):
        transcode_to_baseline(truncated)


def test_missing_end_of_image_is_reported() -> None:
    source = MONKEY.read_bytes()

    with pytest.raises(JpegFormatError, match="ends without an EOI marker"):
        transcode_to_baseline(source[:-2])


def test_restart_marker_out_of_order_is_reported() -> None:
    source = (JPEG12_DIR / "pvrg_grey_restart.jpg").read_bytes()
    first = source.index(b"\xff\xd0", scan_data_start(source))
    damaged = source[:first] + b"\xff\xd1" + source[first + 2 :]

    with pytest.raises(JpegFormatError, match="RST1 comes where RST0 belongs"):
        transcode_to_baseline(damaged)


def test_missing_restart_marker_is_reported() -> None:
    source = (JPEG12_DIR / "libjpegtools_ycbcr420_restart.jpg").read_bytes()
    markers = [match.start() for match in re.finditer(rb"\xff[\xd0-\xd7]", source)]
    damaged = source[: markers[-1]] + source[markers[-1] + 2 :]

    intervals = len(markers) + 1
    expected = f"{intervals - 1} restart intervals where {intervals} belong"
    with pytest.raises(JpegFormatError, match=expected):
        transcode_to_baseline(damaged)


def test_overfull_huffman_table_is_reported() -> None:
    source = MONKEY.read_bytes()
    start = source.index(b"\xff\xc4") + 5
    counts = bytearray(source[start : start + 16])
    # Three codes of length 1 cannot exist; the number of codes stays.
    longer = next(index for index, count in enumerate(counts) if count >= 3)
    counts[0] += 3
    counts[longer] -= 3
    damaged = source[:start] + bytes(counts) + source[start + 16 :]

    with pytest.raises(JpegFormatError, match="invalid Huffman table"):
        transcode_to_baseline(damaged)


def test_undefined_huffman_table_is_reported() -> None:
    source = MONKEY.read_bytes()
    selectors = source.index(b"\xff\xda") + 6
    damaged = source[:selectors] + b"\x22" + source[selectors + 1 :]

    with pytest.raises(JpegFormatError, match="DC Huffman table 2, which is not"):
        transcode_to_baseline(damaged)


def test_dc_category_beyond_12_bits_is_reported() -> None:
    source = MONKEY.read_bytes()
    table = source.index(b"\xff\xc4")
    counts = source[table + 5 : table + 21]
    symbols = table + 21
    # Every symbol of DC table 0 becomes category 16.
    damaged = (
        source[:symbols] + bytes([16]) * sum(counts) + source[symbols + sum(counts) :]
    )

    with pytest.raises(JpegFormatError, match="invalid DC Huffman code in MCU 1"):
        transcode_to_baseline(damaged)


def test_run_past_last_coefficient_is_reported() -> None:
    source = MONKEY.read_bytes()
    dht = source.index(b"\xff\xc4")
    table = source.index(b"\xff\xc4", dht + 2)
    assert source[table + 4] == 0x10, "the second DHT is expected to be AC table 0"
    counts = source[table + 5 : table + 21]
    symbols = table + 21
    # Every AC code means 15 zeros and a value: the fourth passes position 63.
    damaged = source[:symbols] + b"\xf1" * sum(counts) + source[symbols + sum(counts) :]

    with pytest.raises(JpegFormatError, match="more than 64 coefficients"):
        transcode_to_baseline(damaged)


def test_huge_frame_with_little_data_fails_fast() -> None:
    source = with_frame_size(MONKEY.read_bytes(), 8000, 8000)

    started = time.monotonic()
    with pytest.raises(JpegFormatError, match="truncated or damaged"):
        transcode_to_baseline(source)

    # Decoding stops at the end of the data, not after 64 million pixels.
    assert time.monotonic() - started < 10


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    name=st.sampled_from(
        ["pvrg_grey_restart.jpg", "pvrg_ycbcr420_separate_scans_restart.jpg"]
    ),
    changes=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)),
        min_size=1,
        max_size=8,
    ),
    keep=st.floats(0.2, 1),
)
def test_damaged_data_never_breaks_the_transcoder(
    name: str, changes: list[tuple[float, int]], keep: float
) -> None:
    source = bytearray((JPEG12_DIR / name).read_bytes())
    start = scan_data_start(bytes(source))
    for where, value in changes:
        source[start + int(where * (len(source) - start - 2))] = value
    damaged = bytes(source[: start + int(keep * (len(source) - start))])

    try:
        output = transcode_to_baseline(damaged)
    except (JpegFormatError, UnsupportedJpegError):
        return
    assert parse_jpeg(output).baseline_problem() is None


@pytest.mark.parametrize(("name", "problem"), sorted(REJECTED.items()))
def test_other_12_bit_processes_are_rejected(name: str, problem: str) -> None:
    source = (JPEG12_DIR / name).read_bytes()

    assert transcode_problem(parse_jpeg(source)) == problem
    with pytest.raises(UnsupportedJpegError):
        transcode_to_baseline(source)


def test_eight_bit_stream_is_not_transcoded() -> None:
    source = (JPEG_DIR / "hopper_16bit_qtables_sof1.jpg").read_bytes()

    with pytest.raises(UnsupportedJpegError, match="8 bits"):
        transcode_to_baseline(source)


def test_four_components_are_not_transcoded() -> None:
    structure = JpegStructure(
        sof_marker=0xC1,
        precision=12,
        rows=8,
        columns=8,
        components=parse_jpeg(
            (JPEG_DIR / "pil_sample_cmyk_ycck_adobe.jpg").read_bytes()
        ).components,
    )

    assert transcode_problem(structure) == "a 12-bit JPEG with 4 components"


# Huffman tables of the new stream


def test_optimal_table_limits_codes_to_16_bits() -> None:
    # Fibonacci frequencies give a Huffman code 39 bits deep.
    frequencies = [1, 1]
    while len(frequencies) < 40:
        frequencies.append(frequencies[-1] + frequencies[-2])

    table = _optimal_table(dict(enumerate(frequencies)))  # type: ignore[arg-type]

    assert len(table.counts) == 16
    assert sum(table.counts) == 40
    assert sorted(table.symbols) == list(range(40))
    kraft = sum(count / 2**length for length, count in enumerate(table.counts, 1))
    # Below 1: the all-ones code stays free, as T.81 requires.
    assert kraft < 1
    # The most frequent symbol gets the shortest code.
    assert table.symbols[0] == 39


# Through the converter


@requires_dcmtk_jpeg
def test_source_ratio_agrees_with_dcmcjpeg(tmp_path: Path) -> None:
    samples = draw_twelve_bit_fundus(200, 150)
    encoded = encode_with_dcmcjpeg(samples, tmp_path)

    ratios = encode_image(encoded.jpeg).compression_ratios

    # dcmcjpeg writes its ratio with five significant digits.
    assert ratios[0] == pytest.approx(encoded.compression_ratio, rel=1e-4)


@requires_dicom3tools
@pytest.mark.parametrize("name", source_parameters())
def test_converted_file_is_valid_op(
    name: str, twelve_bit_source: Callable[[str], bytes], tmp_path: Path
) -> None:
    source = twelve_bit_source(name)
    exam = single_image_exam(tmp_path / "exam", source)

    (file,) = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)

    report = dciodvfy(file.path)
    assert report.errors == [], report.output
    assert report.warnings == [], report.output
    dataset = pydicom.dcmread(file.path)
    assert dataset.file_meta.TransferSyntaxUID == JPEGBaseline8Bit
    assert dataset.BitsStored == 8
    assert dataset.LossyImageCompression == "01"
    assert len(dataset.LossyImageCompressionRatio) == 2
    assert list(dataset.LossyImageCompressionMethod) == ["ISO_10918_1"] * 2
    assert "12-bit" in dataset.DerivationDescription
    assert "quality" not in dataset.DerivationDescription


@requires_dicom3tools
def test_converted_rgb_without_transform_is_valid_op(tmp_path: Path) -> None:
    exam = single_image_exam(tmp_path / "exam", RGB_WITHOUT_TRANSFORM.read_bytes())

    (file,) = convert_exam(exam, None, tmp_path / "out", created_at=CREATED_AT)

    report = dciodvfy(file.path)
    assert report.errors == [], report.output
    assert report.warnings == [], report.output
    assert len(pydicom.dcmread(file.path).LossyImageCompressionRatio) == 3


@pytest.mark.parametrize(("name", "problem"), sorted(REJECTED.items()))
def test_converter_names_rejected_12_bit_file(
    name: str, problem: str, tmp_path: Path
) -> None:
    source = (JPEG12_DIR / name).read_bytes()
    exam = single_image_exam(tmp_path / "exam", source, name=name)

    with pytest.raises(ConversionError) as caught:
        convert_exam(exam, None, tmp_path / "out")

    assert name in str(caught.value)
    assert problem in str(caught.value)
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
