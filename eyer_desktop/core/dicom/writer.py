"""Encoding DICOM files quickly, and writing them atomically.

The images of one series share about 80 of their 100 attributes. pydicom
spends roughly 20 microseconds encoding each element, so
:class:`EncodedTemplate` encodes the shared elements once per series and
:func:`encode_file` encodes only the few elements of each image, then
merges both in tag order. The result is byte for byte what pydicom's
``dcmwrite(..., enforce_file_format=True)`` writes for the merged dataset;
a test checks this.
"""

from __future__ import annotations

import io
import os
import struct
import tempfile
from pathlib import Path
from typing import Any

from pydicom.charset import convert_encodings
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import dcmwrite, write_data_element
from pydicom.multival import MultiValue

from eyer_desktop.core.errors import ConversionError

PREAMBLE = bytes(128) + b"DICM"
_FILE_META_GROUP_LENGTH_TAG = 0x00020000
_FILE_META_ENCODINGS = ["iso8859"]
_SOP_INSTANCE_UID_TAG = 0x00080018
_MEDIA_STORAGE_SOP_INSTANCE_UID_TAG = 0x00020003
_MEDIA_STORAGE_SOP_INSTANCE_UID_BYTES = b"\x02\x00\x03\x00"

# Elements whose encoding is remembered: short values of the simple value
# representations. Sequences and binary values are always encoded afresh.
_UNCACHED_VRS = frozenset({"SQ", "OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_CACHE_MAX_VALUE_LENGTH = 1024
_CACHE_MAX_ENTRIES = 4096


def encode_element(element: DataElement, encodings: list[str]) -> bytes:
    """Encode one data element as explicit VR little endian."""
    stream = DicomBytesIO()
    stream.is_little_endian = True
    stream.is_implicit_VR = False
    write_data_element(stream, element, encodings)
    return stream.getvalue()


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
        self._cache: dict[tuple[Any, ...], bytes] = {}

    def encode(self, element: DataElement) -> bytes:
        """Encode an element, reusing an earlier encoding of an equal one."""
        key = _cache_key(element)
        if key is None:
            return encode_element(element, self.encodings)
        cached = self._cache.get(key)
        if cached is None:
            if len(self._cache) >= _CACHE_MAX_ENTRIES:
                self._cache.clear()
            cached = self._cache[key] = encode_element(element, self.encodings)
        return cached


def _cache_key(element: DataElement) -> tuple[Any, ...] | None:
    if element.VR in _UNCACHED_VRS:
        return None
    value = element.value
    if isinstance(value, MultiValue):
        value = tuple(value)
    if len(str(value)) > _CACHE_MAX_VALUE_LENGTH:
        return None
    return (int(element.tag), element.VR, type(value), value)


def encode_file(template: EncodedTemplate, part: Dataset) -> bytes:
    """Encode a DICOM file from a template and the elements of one instance.

    Elements of ``part`` replace template elements with the same tag; ``part``
    must hold the SOP Instance UID.
    """
    elements = dict(template.elements)
    for element in part:
        elements[int(element.tag)] = template.encode(element)
    body = b"".join(elements[tag] for tag in sorted(elements))

    # Media Storage SOP Instance UID is the SOP Instance UID under another
    # tag: both are UI elements, so only the four tag bytes differ.
    meta_elements = dict(template.meta_elements)
    meta_elements[_MEDIA_STORAGE_SOP_INSTANCE_UID_TAG] = (
        _MEDIA_STORAGE_SOP_INSTANCE_UID_BYTES + elements[_SOP_INSTANCE_UID_TAG][4:]
    )
    meta = b"".join(meta_elements[tag] for tag in sorted(meta_elements))
    group_length = struct.pack("<HH2sHI", 0x0002, 0x0000, b"UL", 4, len(meta))
    return PREAMBLE + group_length + meta + body


def encode_dataset(dataset: Dataset) -> bytes:
    """Encode a complete dataset with its file meta, with pydicom alone."""
    buffer = io.BytesIO()
    dcmwrite(buffer, dataset, enforce_file_format=True)
    return buffer.getvalue()


def write_temporary(data: bytes, folder: Path, name: str) -> Path:
    """Write the bytes to a new temporary file in ``folder``, named after
    ``name``, and return its path.
    """
    # NOTE: files are not fsynced: they can be made again from the exam at
    # any time, and an fsync per file would dominate the conversion time.
    handle, temporary_name = tempfile.mkstemp(
        dir=folder, prefix=f".{name}.", suffix=".part"
    )
    temporary = Path(temporary_name)
    try:
        with os.fdopen(handle, "wb") as stream:
            stream.write(data)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return temporary


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
