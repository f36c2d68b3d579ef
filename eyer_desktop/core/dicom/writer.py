"""Encoding DICOM files quickly, and writing them atomically.

The images of one series share about 80 of their 100 attributes. Building
and encoding one element with pydicom takes about 20 microseconds on a
desktop machine, so the 20 elements of an image would cost more than
writing its file. The fast path therefore calls pydicom only for values it
has not seen:

* :class:`EncodedTemplate` encodes the elements that a series shares once.
* The elements of each image arrive as (keyword, value) pairs. An element
  equal to one encoded before reuses its bytes, and a short value of a value
  representation that is always ASCII is encoded directly.
* The encapsulated Pixel Data is framed around the JPEG stream, which is
  never copied into a larger buffer: :func:`encode_file` returns a list of
  buffers, and :func:`write_temporary` writes them one after the other.

The result is byte for byte what pydicom's
``dcmwrite(..., enforce_file_format=True)`` writes for the same dataset.
Tests check this for every kind of image.
"""

from __future__ import annotations

import collections
import contextlib
import errno
import functools
import io
import os
import secrets
import struct
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element

from eyer_desktop.core.errors import ConversionError

Buffer = bytes | memoryview

PREAMBLE = bytes(128) + b"DICM"
_FILE_META_GROUP_LENGTH_TAG = 0x00020000
_FILE_META_ENCODINGS = ["iso8859"]
_SOP_INSTANCE_UID_TAG = 0x00080018
_MEDIA_STORAGE_SOP_INSTANCE_UID_TAG = 0x00020003
_MEDIA_STORAGE_SOP_INSTANCE_UID_BYTES = b"\x02\x00\x03\x00"
_PIXEL_DATA_TAG = 0x7FE00010

# Encapsulated Pixel Data of one frame in one fragment (PS3.5 A.4): the
# element header with undefined length, a Basic Offset Table holding the
# single offset 0, the fragment item, and the sequence delimiter.
_PIXEL_DATA_HEADER = b"\xe0\x7f\x10\x00OB\x00\x00\xff\xff\xff\xff"
_BASIC_OFFSET_TABLE = b"\xfe\xff\x00\xe0\x04\x00\x00\x00\x00\x00\x00\x00"
_ITEM_TAG = b"\xfe\xff\x00\xe0"
_SEQUENCE_DELIMITER = b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"

# Value representations whose text is ASCII whatever the character set:
# the byte that pads each value to even length, and the longest value of
# each item (PS3.5 Table 6.2-1). Values outside these bounds go through
# pydicom, which checks them.
_ASCII_VRS: dict[str, tuple[bytes, int]] = {
    "AE": (b" ", 16),
    "AS": (b" ", 4),
    "CS": (b" ", 16),
    "DA": (b" ", 8),
    "DS": (b" ", 16),
    "DT": (b" ", 26),
    "IS": (b" ", 12),
    "TM": (b" ", 14),
    "UI": (b"\x00", 64),
}
_SHORT_LENGTH_MAX = 0xFFFE

# Bounds on the memory of encoded values.
_CACHE_MAX_VALUE_LENGTH = 16384
_CACHE_MAX_ENTRIES = 4096

_TEMPORARY_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
_TEMPORARY_ATTEMPTS = 100
# Buffers shorter than this are joined before writing: a copy of a few
# kilobytes costs less than a system call.
_COALESCE_BELOW = 65536
# Windows has no writev; each buffer then takes a write call of its own.
_HAS_WRITEV = hasattr(os, "writev")
# POSIX guarantees at least 16 buffers per writev call (_XOPEN_IOV_MAX).
_WRITEV_MAX_BUFFERS = 16
# Maximum number of files encoded ahead of the writer thread. Each keeps its
# image's bytes in memory until written.
_WRITES_AHEAD = 4


def encode_element(element: DataElement, encodings: list[str]) -> bytes:
    """Encode one data element as explicit VR little endian."""
    stream = DicomBytesIO()
    stream.is_little_endian = True
    stream.is_implicit_VR = False
    write_data_element(stream, element, encodings)
    return stream.getvalue()


@functools.cache
def keyword_tag_and_vr(keyword: str) -> tuple[int, str]:
    """Return the tag and value representation of a standard keyword."""
    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"{keyword} is not a DICOM keyword")
    return tag, dictionary_VR(tag)


class EncodedTemplate:
    """The elements of a template dataset and its file meta information, each
    encoded once, and a memory of the per-instance elements encoded with it.

    The template must hold Specific Character Set, which decides how the
    text of every element is encoded. The file meta information of each file
    is the template's, with the Media Storage SOP Instance UID of the file.
    """

    def __init__(self, template: Dataset, file_meta: FileMetaDataset) -> None:
        self.encodings: list[str] = convert_encodings(template.SpecificCharacterSet)
        self.elements: dict[int, bytes] = {
            int(element.tag): encode_element(element, self.encodings)
            for element in template
        }
        self.meta_elements: dict[int, bytes] = {
            int(element.tag): encode_element(element, _FILE_META_ENCODINGS)
            for element in file_meta
            if element.tag != _FILE_META_GROUP_LENGTH_TAG
        }
        self._cache: dict[tuple[str, Any], tuple[int, bytes]] = {}

    def encode(self, keyword: str, value: Any) -> tuple[int, bytes]:
        """Return the tag and encoding of an element given by keyword and value,
        reusing an earlier encoding of an equal element.
        """
        try:
            key = (keyword, value)
            cached = self._cache.get(key)
        except TypeError:  # A sequence or another unhashable value.
            tag, vr = keyword_tag_and_vr(keyword)
            return tag, self._encode_with_pydicom(tag, vr, value)
        if cached is None:
            tag, vr = keyword_tag_and_vr(keyword)
            encoded = _encode_ascii(tag, vr, value)
            if encoded is None:
                encoded = self._encode_with_pydicom(tag, vr, value)
            cached = (tag, encoded)
            if len(encoded) <= _CACHE_MAX_VALUE_LENGTH:
                if len(self._cache) >= _CACHE_MAX_ENTRIES:
                    self._cache.clear()
                self._cache[key] = cached
        return cached

    def _encode_with_pydicom(self, tag: int, vr: str, value: Any) -> bytes:
        # pydicom takes multiple values as a list, not a tuple.
        if isinstance(value, tuple):
            value = list(value)
        return encode_element(DataElement(tag, vr, value), self.encodings)


def _encode_ascii(tag: int, vr: str, value: Any) -> bytes | None:
    """Encode a text value of an ASCII value representation, or return None
    when the value needs pydicom's encoder and checks.
    """
    rule = _ASCII_VRS.get(vr)
    if rule is None:
        return None
    padding, item_max = rule
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if not isinstance(item, str) or len(item) > item_max or not item.isascii():
            return None
        if "\\" in item:
            return None
    raw = "\\".join(items).encode("ascii")
    if len(raw) % 2:
        raw += padding
    if len(raw) > _SHORT_LENGTH_MAX:
        return None
    group, element = divmod(tag, 0x10000)
    return struct.pack("<HH2sH", group, element, vr.encode("ascii"), len(raw)) + raw


def encode_file(
    template: EncodedTemplate,
    elements: Iterable[tuple[str, Any]],
    pixel_fragment: Buffer | Sequence[Buffer] | None = None,
) -> list[Buffer]:
    """Encode a DICOM file from a template and the elements of one instance.

    Elements given as (keyword, value) replace template elements with the
    same tag; they must include SOPInstanceUID. ``pixel_fragment``, when
    given, becomes encapsulated Pixel Data of one frame in one fragment; it
    may come as consecutive buffers.

    Returns:
        The file's bytes as buffers to be written in order; the fragment is
        one of them, uncopied.
    """
    encoded = dict(template.elements)
    encode = template.encode
    for keyword, value in elements:
        tag, data = encode(keyword, value)
        encoded[tag] = data
    tags = sorted(encoded)
    if tags[-1] >= _PIXEL_DATA_TAG:
        raise ValueError("Pixel Data and later elements go in pixel_fragment")
    body = b"".join([encoded[tag] for tag in tags])

    # Media Storage SOP Instance UID is the SOP Instance UID under another
    # tag: both are UI elements, so only the four tag bytes differ.
    meta_elements = dict(template.meta_elements)
    meta_elements[_MEDIA_STORAGE_SOP_INSTANCE_UID_TAG] = (
        _MEDIA_STORAGE_SOP_INSTANCE_UID_BYTES + encoded[_SOP_INSTANCE_UID_TAG][4:]
    )
    meta = b"".join([meta_elements[tag] for tag in sorted(meta_elements)])
    group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(meta))
    head = b"".join([PREAMBLE, group_length, meta, body])
    if pixel_fragment is None:
        return [head]

    if isinstance(pixel_fragment, bytes | memoryview):
        pixel_fragment = [pixel_fragment]
    length = sum(len(piece) for piece in pixel_fragment)
    padded = length + (length & 1)
    item_header = _ITEM_TAG + struct.pack("<I", padded)
    framing = _PIXEL_DATA_HEADER + _BASIC_OFFSET_TABLE + item_header
    tail = b"\x00" * (padded - length) + _SEQUENCE_DELIMITER
    return [head + framing, *pixel_fragment, tail]


def encode_dataset(dataset: Dataset) -> bytes:
    """Encode a complete dataset with its file meta, with pydicom alone."""
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def write_temporary(data: Buffer | Sequence[Buffer], folder: Path, name: str) -> Path:
    """Write the bytes, or buffers one after the other, to a new temporary
    file in ``folder`` named after ``name``, and return its path.
    """
    return Path(_write_temporary(data, os.fspath(folder), name))


def _write_temporary(data: Buffer | Sequence[Buffer], folder: str, name: str) -> str:
    buffers = [data] if isinstance(data, bytes | memoryview) else data
    handle, temporary = _create_temporary(folder, name)
    try:
        try:
            _write_buffers(handle, list(_coalesced(buffers)))
        finally:
            os.close(handle)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise
    # NOTE: files are not fsynced: they can be made again from the exam at
    # any time, and an fsync per file would dominate the conversion time.
    return temporary


def write_files(
    files: Iterable[tuple[str, Sequence[Buffer]]], folder: Path
) -> list[Path]:
    """Write files, given as (name, buffers), into ``folder``, all or none.

    Each file is written under a temporary name as soon as ``files`` produces
    it. Only when every file is written are they renamed to their final
    names, replacing earlier files. When ``files``, a write or a rename
    raises, or the process is interrupted, the temporary files are removed,
    the files already replaced are put back, and the exception propagates.

    The writes run on a thread of their own while the caller's thread makes
    the next file: the system calls release the GIL, so writing one file
    overlaps with encoding the next.

    Returns:
        The final paths, in the order of ``files``.
    """
    directory = os.fspath(folder)
    pending: collections.deque[tuple[Future[str], str]] = collections.deque()
    written: list[tuple[str, str]] = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dicom-writer") as pool:
        try:
            for name, buffers in files:
                future = pool.submit(_write_temporary, buffers, directory, name)
                pending.append((future, os.path.join(directory, name)))
                if len(pending) > _WRITES_AHEAD:
                    _collect_oldest(pending, written)
            while pending:
                _collect_oldest(pending, written)
        except BaseException:
            _discard(pending, written)
            raise
    _replace_all(written)
    return [Path(final) for _, final in written]


def _collect_oldest(
    pending: collections.deque[tuple[Future[str], str]],
    written: list[tuple[str, str]],
) -> None:
    """Wait for the oldest pending write and move it to ``written``.

    The write enters ``written`` before it leaves ``pending``, so an
    interruption at any point leaves it in one of them, and its temporary
    file is removed.
    """
    future, final = pending[0]
    written.append((future.result(), final))
    pending.popleft()


def _discard(
    pending: collections.deque[tuple[Future[str], str]],
    written: list[tuple[str, str]],
) -> None:
    """Cancel the pending writes and remove every temporary file."""
    for future, _ in pending:
        future.cancel()
    for future, final in pending:
        # A write already running finishes; its file goes too.
        with contextlib.suppress(BaseException):
            written.append((future.result(), final))
    for temporary, _ in written:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _replace_all(written: list[tuple[str, str]]) -> None:
    """Rename each temporary file to its final name, all or none.

    An earlier file under a final name is first renamed aside, so that it
    can be put back when a later rename fails or the process is interrupted.
    The earlier files are removed only once every new file is in place.

    Raises:
        IsADirectoryError: A final name is taken by a folder; nothing was
            renamed.
        OSError: A rename failed; the earlier files are back in place.
    """
    try:
        for _, final in written:
            if os.path.isdir(final) and not os.path.islink(final):
                raise IsADirectoryError(
                    errno.EISDIR, "A folder has the name of a file to write", final
                )
        placed: list[tuple[str, str | None]] = []
        try:
            for temporary, final in written:
                backup = None
                if os.path.lexists(final):
                    backup = _aside_name(final)
                    os.replace(final, backup)
                try:
                    os.replace(temporary, final)
                except BaseException:
                    if backup is not None:
                        os.replace(backup, final)
                    raise
                placed.append((final, backup))
        except BaseException:
            for final, backup in reversed(placed):
                with contextlib.suppress(OSError):
                    if backup is None:
                        os.unlink(final)
                    else:
                        os.replace(backup, final)
            raise
    except BaseException:
        for temporary, _ in written:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(temporary)
        raise
    for _, backup in placed:
        if backup is not None:
            with contextlib.suppress(OSError):
                os.unlink(backup)


def _aside_name(final: str) -> str:
    """Return a free hidden name beside ``final`` for its earlier file."""
    folder, name = os.path.split(final)
    for _ in range(_TEMPORARY_ATTEMPTS):
        candidate = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.old")
        if not os.path.lexists(candidate):
            return candidate
    raise FileExistsError(f"No free name beside {final} for its earlier file")


def _create_temporary(folder: str, name: str) -> tuple[int, str]:
    """Create a new file with a random name that no other file has."""
    for _ in range(_TEMPORARY_ATTEMPTS):
        path = os.path.join(folder, f".{name}.{secrets.token_hex(6)}.part")
        try:
            return os.open(path, _TEMPORARY_FLAGS, 0o666), path
        except FileExistsError:
            continue
    raise FileExistsError(f"No free temporary name for {name} in {folder}")


def _coalesced(buffers: Iterable[Buffer]) -> Iterator[Buffer]:
    """Yield the buffers with runs of small ones joined, so that a file takes
    a few write calls instead of one for every JPEG segment.
    """
    small: list[Buffer] = []
    for buffer in buffers:
        if len(buffer) < _COALESCE_BELOW:
            small.append(buffer)
            continue
        if small:
            yield b"".join(small)
            small = []
        yield buffer
    if small:
        yield b"".join(small)


def _write_buffers(handle: int, buffers: list[Buffer]) -> None:
    """Write the buffers in order, in one system call where the OS allows."""
    if not _HAS_WRITEV:
        for buffer in buffers:
            _write_all(handle, buffer)
        return
    views = [memoryview(buffer) for buffer in buffers]
    while views:
        written = os.writev(handle, views[:_WRITEV_MAX_BUFFERS])
        if written == 0 and any(views):
            raise OSError(errno.EIO, "The file system accepted no bytes")
        while views and written >= len(views[0]):
            written -= len(views.pop(0))
        if written:
            views[0] = views[0][written:]


def _write_all(handle: int, buffer: Buffer) -> None:
    view = memoryview(buffer)
    while view:
        written = os.write(handle, view)
        if written == 0:
            raise OSError(errno.EIO, "The file system accepted no bytes")
        view = view[written:]


def write_dataset(dataset: Dataset, path: Path) -> None:
    """Write one dataset as a DICOM file, atomically: under a temporary name
    in the same folder, then renamed over ``path``.

    Raises:
        ConversionError: The file cannot be written.
    """
    data = encode_dataset(dataset)
    try:
        temporary = write_temporary(data, path.parent, path.name)
    except OSError as err:
        raise ConversionError(f"Cannot write {path}: {err.strerror or err}.") from err
    try:
        os.replace(temporary, path)
    except OSError as err:
        temporary.unlink(missing_ok=True)
        raise ConversionError(f"Cannot write {path}: {err.strerror or err}.") from err
