"""JPEG marker parsing and metadata stripping (ITU-T T.81, Annex B).

The parser reads the marker segments of a JPEG stream without decoding any
pixels. It reports the facts that decide whether the stream can be embedded
unchanged under the JPEG Baseline transfer syntax: frame type, precision,
components, colour transform and EXIF orientation. It also collects the ICC
profile, checks the Huffman tables and finds the end of the image.
Structural damage (a missing marker, a segment running past the end, no EOI)
raises :class:`JpegFormatError`.
"""

from __future__ import annotations

import functools
import logging
import math
import re
import struct
from dataclasses import dataclass, field

logger = logging.getLogger(__name__)

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"

_SOF0 = 0xC0
_DHT = 0xC4
_DAC = 0xCC
_SOS = 0xDA
_DQT = 0xDB
_DRI = 0xDD
_APP0 = 0xE0
_APP1 = 0xE1
_APP2 = 0xE2
_APP14 = 0xEE
_COM = 0xFE
# JPEG extensions (T.81 Table B.1), reserved.
_JPG0 = 0xF0
_JPG13 = 0xFD

# Start-of-frame markers (T.81 Table B.1): C0-CF except DHT (C4), JPG (C8)
# and DAC (CC).
_SOF_MARKERS = frozenset(range(0xC0, 0xD0)) - {_DHT, 0xC8, _DAC}
_SOF_NAMES = {
    0xC0: "baseline (SOF0)",
    0xC1: "extended sequential (SOF1)",
    0xC2: "progressive (SOF2)",
    0xC3: "lossless (SOF3)",
    0xC5: "hierarchical sequential (SOF5)",
    0xC6: "hierarchical progressive (SOF6)",
    0xC7: "hierarchical lossless (SOF7)",
    0xC9: "arithmetic-coded sequential (SOF9)",
    0xCA: "arithmetic-coded progressive (SOF10)",
    0xCB: "arithmetic-coded lossless (SOF11)",
    0xCD: "hierarchical arithmetic-coded sequential (SOF13)",
    0xCE: "hierarchical arithmetic-coded progressive (SOF14)",
    0xCF: "hierarchical arithmetic-coded lossless (SOF15)",
}

# Descriptions of the colour models that cannot be stored as YBR_FULL_422.
_COLOUR_MODEL_SOURCES = {
    "RGB": "an RGB JPEG without colour transform",
    "CMYK": "a CMYK JPEG",
    "YCCK": "a YCCK JPEG",
    "other": "a JPEG with an unusual number of components",
}

# Inside entropy-coded data a 0xFF byte is followed by 0x00 (byte stuffing),
# or by another 0xFF (fill). Anything else is a marker: RST0-RST7 between
# restart intervals, or the marker after the scan.
_MARKER_IN_SCAN = re.compile(rb"\xff[^\x00\xff]")
_RST0 = 0xD0
_RST7 = 0xD7
# Frame types whose scans code every data unit once, in order, so that the
# number of restart markers follows from the frame size.
_SEQUENTIAL_FRAMES = frozenset({0xC0, 0xC1, 0xC9})

_JFIF_ID = b"JFIF\x00"
_EXIF_ID = b"Exif\x00\x00"
_ICC_ID = b"ICC_PROFILE\x00"
_ADOBE_ID = b"Adobe"
_EXIF_ORIENTATION_TAG = 0x0112

# Adobe APP14 colour transform codes.
ADOBE_TRANSFORM_NONE = 0
ADOBE_TRANSFORM_YCBCR = 1
ADOBE_TRANSFORM_YCCK = 2


class JpegFormatError(ValueError):
    """The bytes are not a complete, well-formed JPEG stream."""


@dataclass(frozen=True)
class Component:
    """One image component of the frame header."""

    identifier: int
    horizontal_sampling: int
    vertical_sampling: int
    quantization_table: int


@dataclass(frozen=True)
class JfifDensity:
    """Pixel density from the JFIF APP0 segment (units 0 = aspect ratio only)."""

    units: int
    x: int
    y: int


@dataclass
class JpegStructure:
    """Facts declared by the marker segments of one JPEG stream.

    Attributes:
        sof_marker: The start-of-frame marker code (0xC0 for baseline).
        precision: Sample precision in bits.
        rows: Number of lines from the frame header.
        columns: Number of samples per line from the frame header.
        components: The frame's components, in the order they are coded.
        adobe_transform: Colour transform of an Adobe APP14 segment, or None.
        jfif_density: Pixel density of the JFIF APP0 segment, or None.
        exif_orientation: EXIF Orientation (1 to 8), 1 when absent.
        exif: The TIFF structure of the EXIF APP1 segment, or None.
        icc_profile: The ICC profile reassembled from APP2 chunks, or None.
        quantization_precisions: Pq (0 = 8-bit, 1 = 16-bit) of every DQT table.
        huffman_table_ids: Destination ids of every DHT table.
        has_arithmetic_tables: True when a DAC segment is present.
        pieces: The stream with APPn (except JFIF APP0) and COM segments
            removed and anything after EOI dropped, as consecutive buffers.
            Every other segment and all entropy-coded data are unchanged. The
            entropy-coded data is a view of the parsed bytes, not a copy.
    """

    sof_marker: int
    precision: int
    rows: int
    columns: int
    components: tuple[Component, ...]
    adobe_transform: int | None = None
    jfif_density: JfifDensity | None = None
    exif_orientation: int = 1
    exif: bytes | None = field(default=None, repr=False)
    icc_profile: bytes | None = None
    quantization_precisions: tuple[int, ...] = ()
    huffman_table_ids: tuple[int, ...] = ()
    has_arithmetic_tables: bool = False
    pieces: tuple[bytes | memoryview, ...] = field(default=(), repr=False)

    @functools.cached_property
    def stripped(self) -> bytes:
        """The stream without metadata segments (see ``pieces``), in one piece."""
        return b"".join(self.pieces)

    @property
    def stripped_length(self) -> int:
        """The length of the stream without metadata segments."""
        return sum(len(piece) for piece in self.pieces)

    @property
    def frame_name(self) -> str:
        """Name of the frame type, for messages."""
        return _SOF_NAMES.get(self.sof_marker, f"SOF marker 0x{self.sof_marker:02X}")

    def colour_model(self, *, with_app14: bool = True) -> str:
        """Return how a decoder reads the components: "grey", "YCbCr", "RGB",
        "CMYK", "YCCK" or "other".

        Follows libjpeg's default_decompress_parms: for three components a
        JFIF APP0 means YCbCr, else an Adobe APP14 transform decides, else
        component ids "R", "G", "B" mean RGB. With ``with_app14=False`` the
        result describes the stream once APP14 is stripped.
        """
        count = len(self.components)
        transform = self.adobe_transform if with_app14 else None
        if count == 1:
            return "grey"
        if count == 4:
            return "YCCK" if transform == ADOBE_TRANSFORM_YCCK else "CMYK"
        if count != 3:
            return "other"
        if self.jfif_density is not None:
            return "YCbCr"
        if transform is not None:
            return "RGB" if transform == ADOBE_TRANSFORM_NONE else "YCbCr"
        identifiers = tuple(component.identifier for component in self.components)
        return "RGB" if identifiers == (ord("R"), ord("G"), ord("B")) else "YCbCr"

    def baseline_problem(self) -> str | None:
        """Return why the stream is not baseline 8-bit greyscale or YCbCr JPEG
        that can be stored unchanged, or None when it can.
        """
        if self.sof_marker != _SOF0:
            name = self.frame_name
            article = "an" if name[0] in "aeiou" else "a"
            return f"{article} {name} JPEG"
        if self.precision != 8:
            return f"a {self.precision}-bit JPEG"
        if self.has_arithmetic_tables:
            return "an arithmetic-coded JPEG"
        if any(precision != 0 for precision in self.quantization_precisions):
            return "a JPEG with 16-bit quantization tables"
        if not self.huffman_table_ids:
            return "a JPEG without Huffman tables (Motion JPEG style)"
        if any(table_id > 1 for table_id in self.huffman_table_ids):
            return "a JPEG with more than two Huffman tables of a class"
        model = self.colour_model()
        if model not in ("grey", "YCbCr"):
            return _COLOUR_MODEL_SOURCES[model]
        if self.colour_model(with_app14=False) != model:
            return "a JPEG whose colours depend on its Adobe APP14 segment"
        if self.exif_orientation != 1:
            return f"a JPEG with EXIF orientation {self.exif_orientation}"
        return None


def next_marker(data: bytes, position: int) -> int:
    """Return the position of the marker at ``position``, after any 0xFF fill
    bytes.

    Raises:
        JpegFormatError: No marker starts at ``position``, or the data ends.
    """
    if position >= len(data):
        raise JpegFormatError("it is truncated: it ends without an EOI marker")
    if data[position] != 0xFF:
        raise JpegFormatError(f"it is damaged: no marker at byte {position}")
    while position + 1 < len(data) and data[position + 1] == 0xFF:
        position += 1
    if position + 1 >= len(data):
        raise JpegFormatError("it is truncated: it ends without an EOI marker")
    return position


def segment_end(data: bytes, position: int) -> int:
    """Return where the marker segment at ``position`` ends.

    Raises:
        JpegFormatError: The segment's length is invalid or runs past the end.
    """
    if position + 4 > len(data):
        raise JpegFormatError("it is truncated inside a marker segment")
    length = int.from_bytes(data[position + 2 : position + 4], "big")
    end = position + 2 + length
    if length < 2 or end > len(data):
        raise JpegFormatError(
            f"it is truncated or damaged: the segment at byte {position} "
            f"runs past the end of the file"
        )
    return end


def is_jpeg(data: bytes) -> bool:
    """Return True when the bytes start with a JPEG SOI marker."""
    return data[:3] == b"\xff\xd8\xff"


def parse_jpeg(data: bytes) -> JpegStructure:
    """Parse the marker segments of a JPEG stream.

    Raises:
        JpegFormatError: The stream is damaged, truncated or not a JPEG.
    """
    if not data.startswith(SOI):
        raise JpegFormatError("it does not start with a JPEG SOI marker")

    parser = _Parser(data)
    parser.run()
    return parser.result()


class _Parser:
    """Walks the segments once, collecting facts and the pieces to keep."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        # Entropy-coded data is kept as views of ``data``: the pieces are
        # copied once, when they are joined into the stripped stream.
        self.view = memoryview(data)
        self.pieces: list[bytes | memoryview] = [SOI]
        self.frame: tuple[int, int, int, int, tuple[Component, ...]] | None = None
        self.adobe_transform: int | None = None
        self.jfif_density: JfifDensity | None = None
        self.exif_orientation = 1
        self.exif: bytes | None = None
        self.icc_chunks: dict[int, bytes] = {}
        self.icc_chunk_count = 0
        self.quantization_precisions: list[int] = []
        self.huffman_table_ids: list[int] = []
        self.has_arithmetic_tables = False
        self.scan_count = 0
        self.scan_component_count = 0
        self.restart_interval = 0

    def run(self) -> None:
        data = self.data
        position = 2
        while True:
            position = next_marker(data, position)
            marker = data[position + 1]

            if marker == 0xD9:
                if self.scan_count == 0:
                    raise JpegFormatError("it ends (EOI) before any image data")
                self.pieces.append(EOI)
                return
            if marker == 0xD8 or 0xD0 <= marker <= 0xD7 or marker == 0x01:
                raise JpegFormatError(
                    f"it has an unexpected marker 0xFF{marker:02X} at byte {position}"
                )
            if marker < _SOF0 or _JPG0 <= marker <= _JPG13:
                # Encoders do not write reserved codes, so one here means
                # damaged data. libjpeg (dcmdjpeg) stops on it.
                raise JpegFormatError(
                    f"it is damaged: reserved marker 0xFF{marker:02X} at byte "
                    f"{position}"
                )

            end = segment_end(data, position)
            payload = data[position + 4 : end]
            self._handle_segment(marker, payload, data[position:end], position)
            position = end

            if marker == _SOS:
                position = self._skip_scan(position)

    def _skip_scan(self, position: int) -> int:
        """Return where the entropy-coded data starting at ``position`` ends.

        Every byte is read: a marker inside the data means a damaged stream
        or a second picture after this one's EOI, and taking the data up to
        the file's last EOI instead would embed either. Restart markers must
        come in order, and only when a restart interval is defined.
        """
        data = self.data
        for restarts, match in enumerate(_MARKER_IN_SCAN.finditer(data, position)):
            marker = data[match.start() + 1]
            if not (self.restart_interval and _RST0 <= marker <= _RST7):
                self._check_restart_count(restarts, match.start())
                self.pieces.append(self.view[position : match.start()])
                return match.start()
            if marker != _RST0 + restarts % 8:
                raise JpegFormatError(
                    f"it is damaged: restart marker 0xFF{marker:02X} at byte "
                    f"{match.start()} comes out of order"
                )
        raise JpegFormatError(
            "it is truncated: the image data ends without an EOI marker"
        )

    def _check_restart_count(self, restarts: int, position: int) -> None:
        """Raise when a sequential scan of the whole frame has too few or too
        many restart markers: intervals were lost or the data was cut.
        """
        if not self.restart_interval or self.frame is None:
            return
        marker, _precision, rows, columns, components = self.frame
        if marker not in _SEQUENTIAL_FRAMES:
            return
        if self.scan_component_count == 1 and len(components) == 1:
            units = math.ceil(columns / 8) * math.ceil(rows / 8)
        elif self.scan_component_count == len(components) > 1:
            horizontal = max(component.horizontal_sampling for component in components)
            vertical = max(component.vertical_sampling for component in components)
            units = math.ceil(columns / (8 * horizontal)) * math.ceil(
                rows / (8 * vertical)
            )
        else:
            return  # One scan of several: its size needs the sampling rules.
        expected = math.ceil(units / self.restart_interval) - 1
        if restarts != expected:
            raise JpegFormatError(
                f"it is damaged: the scan ending at byte {position} has "
                f"{restarts} restart markers where {expected} are expected"
            )

    def _handle_segment(
        self, marker: int, payload: bytes, segment: bytes, position: int
    ) -> None:
        if marker in _SOF_MARKERS:
            self._read_frame_header(marker, payload)
        elif marker == _SOS:
            self._read_scan_header(payload, position)
        elif marker == _DHT:
            self._read_huffman_tables(payload)
        elif marker == _DQT:
            self._read_quantization_tables(payload)
        elif marker == _DRI:
            self._read_restart_interval(payload)
        elif marker == _DAC:
            self.has_arithmetic_tables = True
        elif marker in (0xDE, 0xDF):
            raise JpegFormatError("it is a hierarchical JPEG (DHP or EXP marker)")

        if _APP0 <= marker <= 0xEF or marker == _COM:
            self._read_application_segment(marker, payload)
            if marker == _APP0 and payload.startswith(_JFIF_ID):
                self.pieces.append(_jfif_without_thumbnail(segment))
            return
        self.pieces.append(segment)

    def _read_frame_header(self, marker: int, payload: bytes) -> None:
        if self.frame is not None:
            raise JpegFormatError("it has more than one frame header")
        if len(payload) < 6:
            raise JpegFormatError("its frame header is too short")
        precision, rows, columns, count = struct.unpack_from(">BHHB", payload)
        if len(payload) < 6 + 3 * count or count == 0:
            raise JpegFormatError("its frame header is too short")
        if columns == 0:
            raise JpegFormatError("its frame header declares a width of 0")
        if rows == 0:
            raise JpegFormatError(
                "its frame header declares a height of 0, to be set later by a "
                "DNL marker, which is not supported"
            )
        if precision < 2:
            # The minimum precision of any JPEG process is 2 bits (lossless).
            raise JpegFormatError(
                f"its frame header declares {precision} bits per sample, which "
                "no JPEG process has"
            )
        components = []
        for index in range(count):
            identifier, sampling, table = struct.unpack_from(
                ">BBB", payload, 6 + 3 * index
            )
            components.append(
                Component(identifier, sampling >> 4, sampling & 15, table)
            )
        self.frame = (marker, precision, rows, columns, tuple(components))

    def _read_scan_header(self, payload: bytes, position: int) -> None:
        if self.frame is None:
            raise JpegFormatError(
                f"its scan at byte {position} comes before the frame header"
            )
        count = payload[0] if payload else 0
        if not 1 <= count <= 4 or len(payload) != 1 + 2 * count + 3:
            raise JpegFormatError(
                f"it is damaged: invalid scan header at byte {position}"
            )
        identifiers = {component.identifier for component in self.frame[4]}
        selectors = payload[1 : 1 + 2 * count : 2]
        if len(set(selectors)) != count or not identifiers.issuperset(selectors):
            raise JpegFormatError(
                f"it is damaged: the scan header at byte {position} names "
                f"components the frame does not have"
            )
        self.scan_count += 1
        self.scan_component_count = count

    def _read_restart_interval(self, payload: bytes) -> None:
        if len(payload) != 2:
            raise JpegFormatError("its restart interval segment is invalid")
        self.restart_interval = int.from_bytes(payload, "big")

    def _read_huffman_tables(self, payload: bytes) -> None:
        self.huffman_table_ids.extend(_huffman_table_ids(payload))

    def _read_quantization_tables(self, payload: bytes) -> None:
        offset = 0
        while offset < len(payload):
            precision = payload[offset] >> 4
            if precision > 1 or (payload[offset] & 15) > 3:
                raise JpegFormatError("it has an invalid quantization table")
            offset += 1 + 64 * (precision + 1)
            if offset > len(payload):
                raise JpegFormatError("its quantization table segment is too short")
            self.quantization_precisions.append(precision)

    def _read_application_segment(self, marker: int, payload: bytes) -> None:
        if marker == _APP0 and payload.startswith(_JFIF_ID) and len(payload) >= 12:
            units, x, y = struct.unpack_from(">BHH", payload, 7)
            self.jfif_density = JfifDensity(units, x, y)
        elif marker == _APP1 and payload.startswith(_EXIF_ID):
            self.exif = payload[len(_EXIF_ID) :]
            self.exif_orientation = read_exif_orientation(self.exif)
        elif marker == _APP2 and payload.startswith(_ICC_ID) and len(payload) >= 14:
            sequence, count = payload[12], payload[13]
            self.icc_chunk_count = self.icc_chunk_count or count
            self.icc_chunks[sequence] = payload[14:]
        elif marker == _APP14 and payload.startswith(_ADOBE_ID) and len(payload) >= 12:
            self.adobe_transform = payload[11]

    def result(self) -> JpegStructure:
        if self.frame is None:
            raise JpegFormatError("it has no frame header")
        marker, precision, rows, columns, components = self.frame
        return JpegStructure(
            sof_marker=marker,
            precision=precision,
            rows=rows,
            columns=columns,
            components=components,
            adobe_transform=self.adobe_transform,
            jfif_density=self.jfif_density,
            exif_orientation=self.exif_orientation,
            exif=self.exif,
            icc_profile=self._icc_profile(),
            quantization_precisions=tuple(self.quantization_precisions),
            huffman_table_ids=tuple(self.huffman_table_ids),
            has_arithmetic_tables=self.has_arithmetic_tables,
            pieces=tuple(self.pieces),
        )

    def _icc_profile(self) -> bytes | None:
        if not self.icc_chunks:
            return None
        expected = range(1, self.icc_chunk_count + 1)
        if sorted(self.icc_chunks) != list(expected):
            logger.warning(
                "Ignoring an ICC profile with chunks %s of %d",
                sorted(self.icc_chunks),
                self.icc_chunk_count,
            )
            return None
        return b"".join(self.icc_chunks[sequence] for sequence in expected)


@functools.lru_cache(maxsize=64)
def _huffman_table_ids(payload: bytes) -> tuple[int, ...]:
    """Check the tables of a DHT segment and return their destination ids.

    The images of one camera share their tables, so a checked segment is
    remembered. An invalid one raises each time.
    """
    ids: list[int] = []
    offset = 0
    while offset < len(payload):
        if offset + 17 > len(payload):
            raise JpegFormatError("its Huffman table segment is too short")
        table_class = payload[offset] >> 4
        table_id = payload[offset] & 15
        counts = payload[offset + 1 : offset + 17]
        total = sum(counts)
        if table_class > 1 or table_id > 3 or total > 256:
            raise JpegFormatError("it has an invalid Huffman table")
        if offset + 17 + total > len(payload):
            raise JpegFormatError("its Huffman table segment is too short")
        _check_huffman_code_lengths(counts)
        ids.append(table_id)
        offset += 17 + total
    return tuple(ids)


def _check_huffman_code_lengths(counts: bytes) -> None:
    """Raise when the code-length counts describe no valid Huffman code.

    Codes are assigned in canonical order (T.81 Annex C). After the codes of
    each length the next free code must still fit in that many bits, because
    no code may consist of all one bits; libjpeg applies the same rule.
    """
    code = 0
    for length, count in enumerate(counts, start=1):
        code += count
        if code >= 1 << length and count:
            raise JpegFormatError(
                f"it has an invalid Huffman table ({count} codes of length "
                f"{length} do not fit)"
            )
        code <<= 1


def _jfif_without_thumbnail(segment: bytes) -> bytes:
    """Return a JFIF APP0 segment with its thumbnail removed, if it has one."""
    if len(segment) <= 18:
        return segment
    header = bytearray(segment[:18])
    header[2:4] = struct.pack(">H", 16)
    header[16] = 0
    header[17] = 0
    return bytes(header)


def read_exif_orientation(tiff: bytes) -> int:
    """Return the Orientation tag (1 to 8) of EXIF TIFF data, 1 when absent
    or unreadable.
    """
    if len(tiff) < 8 or tiff[:2] not in (b"II", b"MM"):
        return 1
    order = "<" if tiff[:2] == b"II" else ">"
    (ifd_offset,) = struct.unpack_from(order + "I", tiff, 4)
    if ifd_offset + 2 > len(tiff):
        return 1
    (entry_count,) = struct.unpack_from(order + "H", tiff, ifd_offset)
    for index in range(entry_count):
        entry = ifd_offset + 2 + 12 * index
        if entry + 12 > len(tiff):
            return 1
        tag, value_type = struct.unpack_from(order + "HH", tiff, entry)
        if tag == _EXIF_ORIENTATION_TAG and value_type == 3:
            value: int = struct.unpack_from(order + "H", tiff, entry + 8)[0]
            return value if 1 <= value <= 8 else 1
    return 1
