"""Transcoding of 12-bit sequential JPEG into baseline 8-bit JPEG.

Pillow decodes 8-bit JPEG only, so a 12-bit sequential Huffman-coded JPEG
(SOF0 or SOF1) is transcoded here in pure Python, without an inverse DCT.
The quantized DCT coefficients of every block are Huffman-decoded,
dequantized, divided by 16 and requantized with 8-bit tables, then
Huffman-coded again in a baseline (SOF0) stream.

Dividing by 16 is exact in the coefficient domain. The DCT is linear, and the
12-bit level shift (2048) is 16 times the 8-bit one (128), so the result is
the DCT of the picture whose samples are the 12-bit samples divided by 16.
This holds for each component, so a YCbCr image stays YCbCr. An 8-bit
quantization table is the 12-bit table divided by 16, rounded and clamped to
1..255, so requantizing adds at most half an 8-bit quantization step to a
coefficient.

The new stream keeps the component ids, sampling factors and scans of the
source, and copies its APPn segments (JFIF, EXIF, ICC profile, Adobe), so a
caller handles orientation and colour as for any other JPEG. Its Huffman
tables are optimal for its own coefficients (ITU-T T.81 Annex K.2), and it
has no restart markers.
"""

from __future__ import annotations

import heapq
import logging
import re
import struct
import sys
from array import array
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import NamedTuple

from eyer_desktop.core.dicom.jpeg import (
    JpegFormatError,
    JpegStructure,
    next_marker,
    segment_end,
)

logger = logging.getLogger(__name__)

_SOF0 = 0xC0
_SOF1 = 0xC1
_DHT = 0xC4
_SOI = 0xD8
_EOI = 0xD9
_SOS = 0xDA
_DQT = 0xDB
_DNL = 0xDC
_DRI = 0xDD
_APP0 = 0xE0
_APP15 = 0xEF

# Every other start-of-frame marker (T.81 Table B.1) names a process that is
# not sequential Huffman coding.
_OTHER_SOF_MARKERS = frozenset(range(0xC2, 0xD0)) - {_DHT, 0xC8, 0xCC}

# An entropy-coded segment ends at 0xFF followed by anything but 0x00 (a
# stuffed 0xFF byte). Fill bytes (more 0xFF) may come first.
_MARKER_AFTER_SCAN = re.compile(rb"\xff+[^\x00\xff]")

# A baseline stream codes DC differences of categories 0 to 11 and AC values
# of categories 1 to 10, so 8-bit DC values are clamped to -1024..1023 and AC
# values to -1023..1023. Only damaged data reaches these limits.
_DC_MIN, _DC_MAX = -1024, 1023
_AC_MAX = 1023

# Tokens of the coded stream: each is one Huffman symbol plus its extra bits,
# numbered per output table. A DC token is 2047 + the DC difference. An AC
# token is (run << 11) + 1024 + the value; the value -1024, which never
# occurs, stands for end-of-block (run 0) and for the run of 16 zeros (run
# 15).
_DC_TOKENS = 4096
_AC_TOKENS = 16 << 11
_ZRL_OFFSET = 15 << 11

# Bit reads may run past the end of an entropy-coded segment by up to one
# block before the check after each block catches it. A block is at most 64
# codes of 16 bits plus 15 extra bits each, 62 words of 32 bits.
_PADDING_BYTES = 4 * 80

# Typecode of an array of unsigned 32-bit words.
_WORD_TYPECODE = "I" if array("I").itemsize == 4 else "L"


class UnsupportedJpegError(ValueError):
    """The stream is valid JPEG of a kind that this module does not transcode."""


@dataclass(frozen=True)
class _HuffmanTable:
    """One DHT table: the number of codes of each length 1..16, and the symbols."""

    counts: bytes
    symbols: bytes


@dataclass(frozen=True)
class _FrameComponent:
    identifier: int
    horizontal: int
    vertical: int
    quantization_table: int


@dataclass
class _Scan:
    """One scan: its components, the tables in force for it and its data.

    Attributes:
        components: Indexes into the frame's components, in scan order.
        dc_tables: The DC Huffman table of each scan component.
        ac_tables: The AC Huffman table of each scan component.
        restart_interval: MCUs per restart interval, 0 for none.
        segments: The entropy-coded segments, split at restart markers, with
            byte stuffing still in place.
    """

    components: list[int]
    dc_tables: list[_HuffmanTable]
    ac_tables: list[_HuffmanTable]
    restart_interval: int
    segments: list[bytes] = field(default_factory=list)


@dataclass
class _Stream:
    """Frame, scans, tables and APPn segments read from the source stream."""

    application_segments: list[bytes] = field(default_factory=list)
    precision: int = 0
    rows: int = 0
    columns: int = 0
    components: list[_FrameComponent] = field(default_factory=list)
    # The 12-bit quantization table of each frame component, in zigzag order,
    # as it was when the component's scan started.
    component_tables: dict[int, tuple[int, ...]] = field(default_factory=dict)
    scans: list[_Scan] = field(default_factory=list)


def transcode_problem(structure: JpegStructure) -> str | None:
    """Return why a stream with samples of more than 8 bits cannot be
    transcoded to 8 bits, or None when it can.

    The reason completes the sentence "The image is ..." and names what the
    stream is.
    """
    marker = structure.sof_marker
    bits = structure.precision
    if marker not in (_SOF0, _SOF1):
        return f"a {bits}-bit {structure.frame_name} JPEG"
    if bits != 12:
        return f"a {bits}-bit JPEG"
    if structure.has_arithmetic_tables:
        return f"a {bits}-bit arithmetic-coded JPEG"
    if len(structure.components) not in (1, 3):
        return f"a {bits}-bit JPEG with {len(structure.components)} components"
    return None


def transcode_to_baseline(data: bytes) -> bytes:
    """Transcode a 12-bit sequential Huffman-coded JPEG into a baseline 8-bit
    JPEG of the same picture.

    Raises:
        JpegFormatError: The stream is damaged or truncated. Like the
            messages of :func:`eyer_desktop.core.dicom.jpeg.parse_jpeg`, the
            message is a clause about the stream ("it is truncated ...").
        UnsupportedJpegError: The stream is not 12-bit sequential
            Huffman-coded JPEG with one or three components; the message is
            a clause about the stream too.
    """
    stream = _read_stream(data)
    _check_frame(stream)

    output_tables = _output_quantization_tables(stream)
    tokens = [_scan_tokens(stream, scan, output_tables) for scan in stream.scans]
    codes = _optimal_codes(tokens, _output_table_count(stream))

    pieces = [b"\xff\xd8", *stream.application_segments]
    pieces.append(_dqt_segment(output_tables))
    pieces.append(_sof0_segment(stream, output_tables))
    pieces.append(_dht_segment(codes))
    for scan, scan_tokens in zip(stream.scans, tokens, strict=True):
        pieces.append(_sos_segment(stream, scan))
        pieces.append(_entropy_coded_data(scan_tokens, codes))
    pieces.append(b"\xff\xd9")
    return b"".join(pieces)


# Reading the source stream


def _read_stream(data: bytes) -> _Stream:
    """Walk the marker segments, collecting tables, frame, scans and APPn."""
    if not data.startswith(b"\xff\xd8"):
        raise JpegFormatError("it does not start with a JPEG SOI marker")
    stream = _Stream()
    huffman_tables: dict[tuple[int, int], _HuffmanTable] = {}
    quantization_tables: dict[int, tuple[int, ...]] = {}
    restart_interval = 0
    position = 2
    while True:
        position = next_marker(data, position)
        marker = data[position + 1]
        if marker == _EOI:
            return stream
        if marker == _SOI or 0xD0 <= marker <= 0xD7 or marker == 0x01:
            raise JpegFormatError(
                f"it has an unexpected marker 0xFF{marker:02X} at byte {position}"
            )
        end = segment_end(data, position)
        payload = data[position + 4 : end]

        if marker in (_SOF0, _SOF1):
            _read_frame_header(stream, payload)
        elif marker in _OTHER_SOF_MARKERS:
            raise UnsupportedJpegError(f"its frame marker is 0xFF{marker:02X}")
        elif marker == _DHT:
            huffman_tables.update(_read_huffman_tables(payload))
        elif marker == _DQT:
            quantization_tables.update(_read_quantization_tables(payload))
        elif marker == _DRI:
            restart_interval = _read_restart_interval(payload)
        elif marker == _DNL:
            raise UnsupportedJpegError("it sets its height with a DNL marker")
        elif _APP0 <= marker <= _APP15:
            stream.application_segments.append(data[position:end])
        elif marker == _SOS:
            scan = _read_scan_header(stream, payload, huffman_tables, restart_interval)
            _latch_quantization_tables(stream, scan, quantization_tables)
            end = _read_entropy_coded_data(data, end, scan)
            stream.scans.append(scan)
        position = end


def _read_frame_header(stream: _Stream, payload: bytes) -> None:
    if stream.components:
        raise JpegFormatError("it has more than one frame header")
    if len(payload) < 6:
        raise JpegFormatError("its frame header is too short")
    precision, rows, columns, count = struct.unpack_from(">BHHB", payload)
    if count == 0 or len(payload) < 6 + 3 * count:
        raise JpegFormatError("its frame header is too short")
    stream.precision, stream.rows, stream.columns = precision, rows, columns
    for index in range(count):
        identifier, sampling, table = payload[6 + 3 * index : 9 + 3 * index]
        horizontal, vertical = sampling >> 4, sampling & 15
        if not (1 <= horizontal <= 4 and 1 <= vertical <= 4) or table > 3:
            raise JpegFormatError(
                f"its frame header is invalid for component {identifier}"
            )
        stream.components.append(
            _FrameComponent(identifier, horizontal, vertical, table)
        )


def _read_huffman_tables(
    payload: bytes,
) -> Iterable[tuple[tuple[int, int], _HuffmanTable]]:
    offset = 0
    while offset < len(payload):
        if offset + 17 > len(payload):
            raise JpegFormatError("its Huffman table segment is too short")
        table_class, table_id = payload[offset] >> 4, payload[offset] & 15
        counts = payload[offset + 1 : offset + 17]
        total = sum(counts)
        if table_class > 1 or table_id > 3 or total > 256:
            raise JpegFormatError("it has an invalid Huffman table")
        symbols = payload[offset + 17 : offset + 17 + total]
        if len(symbols) < total:
            raise JpegFormatError("its Huffman table segment is too short")
        yield (table_class, table_id), _HuffmanTable(counts, symbols)
        offset += 17 + total


def _read_quantization_tables(
    payload: bytes,
) -> Iterable[tuple[int, tuple[int, ...]]]:
    offset = 0
    while offset < len(payload):
        precision, table_id = payload[offset] >> 4, payload[offset] & 15
        if precision > 1 or table_id > 3:
            raise JpegFormatError("it has an invalid quantization table")
        size = 64 * (precision + 1)
        values = payload[offset + 1 : offset + 1 + size]
        if len(values) < size:
            raise JpegFormatError("its quantization table segment is too short")
        table = struct.unpack(">64H" if precision else "64B", values)
        if 0 in table:
            raise JpegFormatError(
                f"its quantization table {table_id} contains 0, which is invalid"
            )
        yield table_id, table
        offset += 1 + size


def _read_restart_interval(payload: bytes) -> int:
    if len(payload) < 2:
        raise JpegFormatError("its restart interval segment is too short")
    return int.from_bytes(payload[:2], "big")


def _read_scan_header(
    stream: _Stream,
    payload: bytes,
    huffman_tables: dict[tuple[int, int], _HuffmanTable],
    restart_interval: int,
) -> _Scan:
    if not stream.components:
        raise JpegFormatError("its scan comes before the frame header")
    count = payload[0] if payload else 0
    if count == 0 or len(payload) < 4 + 2 * count:
        raise JpegFormatError("its scan header is too short")
    start, end, approximation = payload[1 + 2 * count : 4 + 2 * count]
    if (start, end, approximation) != (0, 63, 0):
        # The frame header fixes the process, so a sequential scan codes all
        # 64 coefficients whatever these fields contain. libjpeg warns and
        # does the same. PVRG-JPEG 1.2.1 writes an end of spectral selection
        # of 0.
        logger.info(
            "Ignoring spectral selection %d..%d and successive approximation "
            "0x%02X in a sequential scan",
            start,
            end,
            approximation,
        )

    identifiers = [component.identifier for component in stream.components]
    scan = _Scan([], [], [], restart_interval)
    for index in range(count):
        identifier, selectors = payload[1 + 2 * index : 3 + 2 * index]
        if identifier not in identifiers:
            raise JpegFormatError(
                f"its scan names component {identifier}, which the frame lacks"
            )
        scan.components.append(identifiers.index(identifier))
        scan.dc_tables.append(_table_in_force(huffman_tables, 0, selectors >> 4))
        scan.ac_tables.append(_table_in_force(huffman_tables, 1, selectors & 15))
    return scan


def _table_in_force(
    tables: dict[tuple[int, int], _HuffmanTable], table_class: int, table_id: int
) -> _HuffmanTable:
    table = tables.get((table_class, table_id))
    if table is None:
        kind = "AC" if table_class else "DC"
        raise JpegFormatError(
            f"its scan uses {kind} Huffman table {table_id}, which is not defined"
        )
    return table


def _latch_quantization_tables(
    stream: _Stream, scan: _Scan, tables: dict[int, tuple[int, ...]]
) -> None:
    for index in scan.components:
        component = stream.components[index]
        if index in stream.component_tables:
            raise JpegFormatError(
                f"its component {component.identifier} is coded in two scans"
            )
        table = tables.get(component.quantization_table)
        if table is None:
            raise JpegFormatError(
                f"its quantization table {component.quantization_table} is not defined"
            )
        stream.component_tables[index] = table


def _read_entropy_coded_data(data: bytes, position: int, scan: _Scan) -> int:
    """Split the scan's data at its restart markers; return where it ends."""
    expected_restart = 0
    start = position
    while True:
        match = _MARKER_AFTER_SCAN.search(data, position)
        if match is None:
            raise JpegFormatError(
                "it is truncated: the image data ends without an EOI marker"
            )
        scan.segments.append(data[start : match.start()])
        marker = data[match.end() - 1]
        if not 0xD0 <= marker <= 0xD7:
            return match.start()
        if marker != 0xD0 + expected_restart:
            raise JpegFormatError(
                f"it is damaged: restart marker RST{marker - 0xD0} comes where "
                f"RST{expected_restart} belongs"
            )
        expected_restart = (expected_restart + 1) % 8
        start = position = match.end()


def _check_frame(stream: _Stream) -> None:
    if not stream.components:
        raise JpegFormatError("it has no frame header")
    if stream.precision != 12:
        raise UnsupportedJpegError(f"its samples have {stream.precision} bits")
    if len(stream.components) not in (1, 3):
        raise UnsupportedJpegError(
            f"it has {len(stream.components)} components, not 1 or 3"
        )
    if stream.rows == 0 or stream.columns == 0:
        raise JpegFormatError(
            f"its frame header declares a {stream.columns}x{stream.rows} image"
        )
    for index, component in enumerate(stream.components):
        if index not in stream.component_tables:
            raise JpegFormatError(
                f"it is truncated: component {component.identifier} has no scan"
            )


# Transcoding the coefficients


class _Requantization:
    """Conversion of a component's 12-bit quantized coefficients to 8-bit ones.

    The coefficient at zigzag position k becomes round(value * source[k] /
    (16 * target[k])), halves away from zero, clamped to the baseline range.
    ``lookup[(k << 9) + 256 + value]`` is the result for every value between
    -255 and 255.
    """

    def __init__(self, source: tuple[int, ...], target: tuple[int, ...]) -> None:
        self.numerators = source
        self.denominators = tuple(16 * value for value in target)
        self.lookup = [
            self.ac(value, k) for k in range(64) for value in range(-256, 256)
        ]

    def ac(self, value: int, k: int) -> int:
        """Return the 8-bit AC coefficient at zigzag position k."""
        result = self._divide(value, k)
        return -_AC_MAX if result < -_AC_MAX else min(result, _AC_MAX)

    def dc(self, value: int) -> int:
        """Return the 8-bit DC coefficient."""
        result = self._divide(value, 0)
        return _DC_MIN if result < _DC_MIN else min(result, _DC_MAX)

    def _divide(self, value: int, k: int) -> int:
        product = value * self.numerators[k]
        denominator = self.denominators[k]
        if product >= 0:
            return (product + denominator // 2) // denominator
        return -((denominator // 2 - product) // denominator)


def _eight_bit_table(table: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(min(255, max(1, (value + 8) // 16)) for value in table)


def _output_quantization_tables(stream: _Stream) -> list[tuple[int, ...]]:
    """Return the 8-bit quantization table of each frame component."""
    return [
        _eight_bit_table(stream.component_tables[index])
        for index in range(len(stream.components))
    ]


class _Slot(NamedTuple):
    """Tables and token offsets for decoding and coding one component's block."""

    dc_lookup: list[int]
    ac_lookup: list[tuple[int, int, int]]
    requantization: _Requantization
    dc_base: int
    ac_base: int
    slot: int


def _scan_blocks(stream: _Stream, scan: _Scan) -> tuple[int, list[int]]:
    """Return the number of MCUs of a scan, and the scan component (an index
    into the scan's lists) of each block of an MCU, in coding order.
    """
    max_horizontal = max(component.horizontal for component in stream.components)
    max_vertical = max(component.vertical for component in stream.components)
    if len(scan.components) == 1:
        # A non-interleaved scan codes the component's own blocks, one per MCU.
        component = stream.components[scan.components[0]]
        width = -(-stream.columns * component.horizontal // max_horizontal)
        height = -(-stream.rows * component.vertical // max_vertical)
        return -(-width // 8) * -(-height // 8), [0]

    layout = [
        slot
        for slot, index in enumerate(scan.components)
        for _ in range(
            stream.components[index].horizontal * stream.components[index].vertical
        )
    ]
    if len(layout) > 10:
        raise JpegFormatError(
            f"it is damaged: its MCU has {len(layout)} blocks, more than 10"
        )
    across = -(-stream.columns // (8 * max_horizontal))
    down = -(-stream.rows // (8 * max_vertical))
    return across * down, layout


def _scan_tokens(
    stream: _Stream, scan: _Scan, output_tables: list[tuple[int, ...]]
) -> array[int]:
    """Decode a scan and return the tokens of its 8-bit coefficients."""
    mcu_count, layout = _scan_blocks(stream, scan)
    interval = scan.restart_interval or mcu_count
    expected_segments = -(-mcu_count // interval)
    if len(scan.segments) != expected_segments:
        raise JpegFormatError(
            f"it is damaged: its scan has {len(scan.segments)} restart intervals "
            f"where {expected_segments} belong"
        )

    slots = []
    requantizations: dict[tuple[tuple[int, ...], ...], _Requantization] = {}
    for slot, index in enumerate(scan.components):
        table = 0 if index == 0 else 1
        key = (stream.component_tables[index], output_tables[index])
        requantization = requantizations.get(key) or _Requantization(*key)
        requantizations[key] = requantization
        slots.append(
            _Slot(
                dc_lookup=_dc_decoding_table(scan.dc_tables[slot]),
                ac_lookup=_ac_decoding_table(scan.ac_tables[slot]),
                requantization=requantization,
                dc_base=table * _DC_TOKENS + 2047,
                ac_base=2 * _DC_TOKENS + table * _AC_TOKENS + 1024,
                slot=slot,
            )
        )
    mcu_slots = [slots[slot] for slot in layout]

    tokens: array[int] = array("i")
    out_predictions = [0] * len(slots)
    remaining = mcu_count
    for number, segment in enumerate(scan.segments):
        count = min(interval, remaining)
        try:
            _transcode_segment(segment, count, mcu_slots, out_predictions, tokens)
        except JpegFormatError as err:
            raise JpegFormatError(
                f"{err} (restart interval {number + 1} of {len(scan.segments)})"
            ) from err
        remaining -= count
    return tokens


def _dc_decoding_table(table: _HuffmanTable) -> list[int]:
    """Return a DC lookup table indexed by the next 16 bits of coded data.

    An entry is the code length shifted left by 8, plus the symbol (the
    category of the difference). 0 marks a bit pattern that starts no code,
    or a category above 15, which no 12-bit scan uses.
    """
    lookup = [0] * 65536
    for length, code, symbol in _codes(table):
        first = code << (16 - length)
        last = (code + 1) << (16 - length)
        entry = (length << 8) | symbol if symbol <= 15 else 0
        lookup[first:last] = [entry] * (last - first)
    return lookup


def _ac_decoding_table(table: _HuffmanTable) -> list[tuple[int, int, int]]:
    """Return an AC lookup table indexed by the next 16 bits of coded data.

    An entry is (bits, run, value). For a value of category 8 or less whose
    code and extra bits fit in the 16 bits, bits counts both and value is the
    coefficient. End-of-block is (code length, 0, 0) and the run of 16 zeros
    (code length, 16, 0). Any other symbol is (-code length, symbol, 0), and
    its extra bits must be read separately. (0, 0, 0) marks a bit pattern
    that starts no code, or a symbol that no 12-bit sequential scan uses.
    """
    invalid = (0, 0, 0)
    lookup = [invalid] * 65536
    for length, code, symbol in _codes(table):
        run, size = symbol >> 4, symbol & 15
        if symbol in (0x00, 0xF0):
            entries = [(code, length, (length, 0 if symbol == 0 else 16, 0))]
        elif not 1 <= size <= 14:
            entries = [(code, length, invalid)]
        elif size > 8 or length + size > 16:
            entries = [(code, length, (-length, symbol, 0))]
        else:
            entries = [
                ((code << size) | extra, length + size, (length + size, run, value))
                for extra, value in _extra_bit_values(size)
            ]
        for prefix, prefix_length, entry in entries:
            first = prefix << (16 - prefix_length)
            last = (prefix + 1) << (16 - prefix_length)
            lookup[first:last] = [entry] * (last - first)
    return lookup


def _codes(table: _HuffmanTable) -> Iterable[tuple[int, int, int]]:
    """Yield the length, code and symbol of every code of a table, assigning
    codes in canonical order (T.81 Annex C).
    """
    code = 0
    symbols = iter(table.symbols)
    for length, count in enumerate(table.counts, start=1):
        for _ in range(count):
            if code >= 1 << length:
                raise JpegFormatError("it has an invalid Huffman table")
            yield length, code, next(symbols)
            code += 1
        code <<= 1


def _extra_bit_values(size: int) -> Iterable[tuple[int, int]]:
    """Yield every extra-bits pattern of a category and the value it codes."""
    for extra in range(1 << size):
        yield extra, extra if extra >> (size - 1) else extra - (1 << size) + 1


def _transcode_segment(
    segment: bytes,
    mcu_count: int,
    mcu_slots: list[_Slot],
    out_predictions: list[int],
    tokens: array[int],
) -> None:
    """Decode the MCUs of one entropy-coded segment and append their tokens.

    The loop runs once per coefficient of a large image, so it is written
    for CPython's speed. It is one function with local names. Its table
    lookups also sign the common values, and its bit buffer is refilled 32
    bits at a time from big-endian words.
    """
    raw = segment.replace(b"\xff\x00", b"\xff")
    available_bits = 8 * len(raw)
    words = array(_WORD_TYPECODE, raw + bytes(-len(raw) % 4 + _PADDING_BYTES))
    if sys.byteorder == "little":
        words.byteswap()
    word_limit = len(raw) // 4 + 2
    append = tokens.append
    predictions = [0] * len(out_predictions)
    buffer = 0
    bits = 0
    position = 0

    for mcu in range(mcu_count):
        for dc_lookup, ac_lookup, requantization, dc_base, ac_base, slot in mcu_slots:
            # DC: the difference from the previous block of the component.
            if bits < 32:
                buffer = ((buffer & 0xFFFFFFFF) << 32) | words[position]
                position += 1
                bits += 32
            entry = dc_lookup[(buffer >> (bits - 16)) & 0xFFFF]
            if not entry:
                raise _bad_code(mcu, "DC")
            bits -= entry >> 8
            size = entry & 0xFF
            if size:
                bits -= size
                value = (buffer >> bits) & ((1 << size) - 1)
                if value < 1 << (size - 1):
                    value -= (1 << size) - 1
                predictions[slot] += value
            dc = requantization.dc(predictions[slot])
            append(dc_base + dc - out_predictions[slot])
            out_predictions[slot] = dc

            # AC: runs of zeros and values, in zigzag order.
            requantized = requantization.lookup
            k = 1
            last = 0
            while k < 64:
                if bits < 32:
                    buffer = ((buffer & 0xFFFFFFFF) << 32) | words[position]
                    position += 1
                    bits += 32
                consumed, run, value = ac_lookup[(buffer >> (bits - 16)) & 0xFFFF]
                if value:
                    bits -= consumed
                    k += run
                    if k > 63:
                        raise _too_many_coefficients(mcu)
                    ac = requantized[(k << 9) + 256 + value]
                elif consumed > 0:
                    bits -= consumed
                    if not run:
                        break
                    k += 16
                    if k > 64:
                        raise _too_many_coefficients(mcu)
                    continue
                elif consumed:
                    # A long code or a large value, so run is the symbol.
                    bits += consumed
                    size = run & 15
                    k += run >> 4
                    if k > 63:
                        raise _too_many_coefficients(mcu)
                    bits -= size
                    value = (buffer >> bits) & ((1 << size) - 1)
                    if value < 1 << (size - 1):
                        value -= (1 << size) - 1
                    ac = requantization.ac(value, k)
                else:
                    raise _bad_code(mcu, "AC")

                if ac:
                    run = k - last - 1
                    while run > 15:
                        append(ac_base - 1024 + _ZRL_OFFSET)
                        run -= 16
                    append(ac_base + (run << 11) + ac)
                    last = k
                k += 1
            if last < 63:
                append(ac_base - 1024)

            if position > word_limit:
                raise JpegFormatError(
                    f"it is truncated or damaged: its image data ends inside "
                    f"MCU {mcu + 1}"
                )

    if 32 * position - bits > available_bits:
        raise JpegFormatError(
            "it is truncated or damaged: its image data ends inside the last MCU"
        )


def _too_many_coefficients(mcu: int) -> JpegFormatError:
    return JpegFormatError(
        f"it is damaged: a block of MCU {mcu + 1} has more than 64 coefficients"
    )


def _bad_code(mcu: int, kind: str) -> JpegFormatError:
    return JpegFormatError(
        f"it is damaged: an invalid {kind} Huffman code in MCU {mcu + 1}"
    )


# Writing the baseline stream


def _output_table_count(stream: _Stream) -> int:
    """Return how many Huffman tables of each class the new stream uses: one
    for the first component and one shared by the others.
    """
    return 1 if len(stream.components) == 1 else 2


@dataclass(frozen=True)
class _HuffmanCode:
    """An optimal Huffman table and the bit string of every token it codes."""

    table: _HuffmanTable
    strings: dict[int, str]


def _optimal_codes(
    tokens: list[array[int]], table_count: int
) -> dict[tuple[int, int], _HuffmanCode]:
    """Return the Huffman code of each output table (class, id) for the
    tokens of every scan.
    """
    frequencies: Counter[int] = Counter()
    for scan_tokens in tokens:
        frequencies.update(scan_tokens)

    codes = {}
    for table_id in range(table_count):
        dc_base = table_id * _DC_TOKENS
        ac_base = 2 * _DC_TOKENS + table_id * _AC_TOKENS
        dc_tokens = [t for t in frequencies if dc_base <= t < dc_base + _DC_TOKENS]
        ac_tokens = [t for t in frequencies if ac_base <= t < ac_base + _AC_TOKENS]
        codes[0, table_id] = _huffman_code(
            {token: _dc_symbol(token - dc_base - 2047) for token in dc_tokens},
            frequencies,
        )
        codes[1, table_id] = _huffman_code(
            {token: _ac_symbol(token - ac_base) for token in ac_tokens},
            frequencies,
        )
    return codes


def _dc_symbol(difference: int) -> tuple[int, int, int]:
    """Return the symbol, extra bits and extra bit count of a DC difference."""
    size = abs(difference).bit_length()
    return size, _extra_bits(difference, size), size


def _ac_symbol(offset: int) -> tuple[int, int, int]:
    """Return the symbol, extra bits and extra bit count of an AC token."""
    run, biased = offset >> 11, offset & 2047
    if not biased:
        return run << 4, 0, 0
    value = biased - 1024
    size = abs(value).bit_length()
    return (run << 4) | size, _extra_bits(value, size), size


def _extra_bits(value: int, size: int) -> int:
    """Return the bits after a symbol: the value, or for a negative value its
    one's complement, in ``size`` bits.
    """
    return value if value >= 0 else value + (1 << size) - 1


def _huffman_code(
    token_symbols: dict[int, tuple[int, int, int]], frequencies: Counter[int]
) -> _HuffmanCode:
    symbol_frequencies: Counter[int] = Counter()
    for token, (symbol, _, _) in token_symbols.items():
        symbol_frequencies[symbol] += frequencies[token]
    table = _optimal_table(symbol_frequencies)
    lengths, values = _canonical_codes(table)
    strings = {}
    for token, (symbol, extra, size) in token_symbols.items():
        length = lengths[symbol]
        strings[token] = format((values[symbol] << size) | extra, f"0{length + size}b")
    return _HuffmanCode(table, strings)


def _optimal_table(frequencies: Counter[int]) -> _HuffmanTable:
    """Build a Huffman table with codes of at most 16 bits (T.81 Annex K.2).

    A reserved symbol of frequency 1 takes the longest code and is then
    dropped, so that no code consists of 1 bits only.
    """
    reserved = 256
    weights = dict(frequencies)
    weights[reserved] = 1
    code_lengths = dict.fromkeys(weights, 0)

    # The reserved symbol loses every tie, so it gets a longest code.
    heap = [
        (weight, -1 if symbol == reserved else symbol, [symbol])
        for symbol, weight in weights.items()
    ]
    heapq.heapify(heap)
    while len(heap) > 1:
        first_weight, first_key, first_group = heapq.heappop(heap)
        second_weight, _, second_group = heapq.heappop(heap)
        for symbol in first_group + second_group:
            code_lengths[symbol] += 1
        heapq.heappush(
            heap,
            (first_weight + second_weight, first_key, first_group + second_group),
        )

    counts = [0] * (max(code_lengths.values()) + 1)
    for length in code_lengths.values():
        counts[length] += 1
    _limit_code_lengths(counts)

    ordered = sorted(weights, key=lambda symbol: (code_lengths[symbol], symbol))
    ordered.remove(reserved)
    counts += [0] * (17 - len(counts))
    return _HuffmanTable(bytes(counts[1:17]), bytes(ordered))


def _limit_code_lengths(counts: list[int]) -> None:
    """Shorten codes longer than 16 bits, then drop the reserved code.

    Each step takes two codes of the longest length (T.81 Figure K.3). One
    of them takes their common prefix, a bit shorter. The other pairs with a
    shorter code, which grows by a bit, so the code stays complete.
    """
    for length in range(len(counts) - 1, 16, -1):
        while counts[length] > 0:
            shorter = length - 2
            while counts[shorter] == 0:
                shorter -= 1
            counts[length] -= 2
            counts[length - 1] += 1
            counts[shorter + 1] += 2
            counts[shorter] -= 1
    longest = min(16, len(counts) - 1)
    while counts[longest] == 0:
        longest -= 1
    counts[longest] -= 1


def _canonical_codes(table: _HuffmanTable) -> tuple[dict[int, int], dict[int, int]]:
    """Return the code length and code value of each symbol (T.81 Annex C)."""
    lengths = {}
    values = {}
    code = 0
    symbols = iter(table.symbols)
    for length, count in enumerate(table.counts, start=1):
        for _ in range(count):
            symbol = next(symbols)
            lengths[symbol] = length
            values[symbol] = code
            code += 1
        code <<= 1
    return lengths, values


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def _distinct_tables(output_tables: list[tuple[int, ...]]) -> list[tuple[int, ...]]:
    return list(dict.fromkeys(output_tables))


def _dqt_segment(output_tables: list[tuple[int, ...]]) -> bytes:
    payload = b"".join(
        bytes([table_id]) + bytes(table)
        for table_id, table in enumerate(_distinct_tables(output_tables))
    )
    return _segment(_DQT, payload)


def _sof0_segment(stream: _Stream, output_tables: list[tuple[int, ...]]) -> bytes:
    distinct = _distinct_tables(output_tables)
    payload = bytearray(
        struct.pack(">BHHB", 8, stream.rows, stream.columns, len(stream.components))
    )
    for component, table in zip(stream.components, output_tables, strict=True):
        sampling = (component.horizontal << 4) | component.vertical
        payload += bytes([component.identifier, sampling, distinct.index(table)])
    return _segment(_SOF0, bytes(payload))


def _dht_segment(codes: dict[tuple[int, int], _HuffmanCode]) -> bytes:
    payload = b"".join(
        bytes([(table_class << 4) | table_id]) + code.table.counts + code.table.symbols
        for (table_class, table_id), code in sorted(codes.items())
    )
    return _segment(_DHT, payload)


def _sos_segment(stream: _Stream, scan: _Scan) -> bytes:
    payload = bytearray([len(scan.components)])
    for index in scan.components:
        table = 0 if index == 0 else 1
        payload += bytes([stream.components[index].identifier, (table << 4) | table])
    payload += bytes([0, 63, 0])
    return _segment(_SOS, bytes(payload))


def _entropy_coded_data(
    tokens: array[int], codes: dict[tuple[int, int], _HuffmanCode]
) -> bytes:
    """Return the coded bits of the tokens, padded with 1 bits to a byte and
    with every 0xFF byte stuffed.
    """
    strings: dict[int, str] = {}
    for code in codes.values():
        strings.update(code.strings)
    # NOTE: the string takes one byte per coded bit, 8 times the size of the
    # scan's coded data (about 7 MB for a 1600x1600 colour fundus).
    bits = "".join(map(strings.__getitem__, tokens))
    bits += "1" * (-len(bits) % 8)
    coded = int(bits, 2).to_bytes(len(bits) // 8, "big")
    return coded.replace(b"\xff", b"\xff\x00")
