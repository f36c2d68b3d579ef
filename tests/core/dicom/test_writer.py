"""The template encoder against pydicom's own writer, and atomic writes."""

from __future__ import annotations

import copy
from pathlib import Path

import pydicom
import pytest
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian

from eyer_desktop.core.dicom.writer import (
    EncodedTemplate,
    encode_dataset,
    encode_file,
    write_dataset,
)
from eyer_desktop.core.errors import ConversionError


def template() -> tuple[Dataset, FileMetaDataset]:
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    ds.PatientName = "Conceição^Maria"
    ds.Modality = "OT"
    ds.AnatomicRegionSequence = [Dataset()]
    ds.AnatomicRegionSequence[0].CodeMeaning = "Olho"
    meta = FileMetaDataset()
    meta.FileMetaInformationVersion = b"\x00\x01"
    meta.MediaStorageSOPClassUID = UID(ds.SOPClassUID)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = UID("1.2.3.4")
    meta.ImplementationVersionName = "TEST_1"
    return ds, meta


def part(uid: str, number: str, rows: int) -> Dataset:
    ds = Dataset()
    ds.SOPInstanceUID = uid
    ds.InstanceNumber = number
    ds.Rows = rows
    ds.Modality = "OP"
    return ds


def reference(shared: Dataset, meta: FileMetaDataset, own: Dataset) -> bytes:
    ds = copy.deepcopy(shared)
    ds.update(copy.deepcopy(own))
    ds.file_meta = copy.deepcopy(meta)
    ds.file_meta.MediaStorageSOPInstanceUID = own.SOPInstanceUID
    return encode_dataset(ds)


def test_template_encoding_equals_pydicom() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)

    for own in [part("1.2.3.5", "1", 480), part("1.2.3.66", "2", 480)]:
        assert encode_file(encoded, own) == reference(shared, meta, own)


def test_remembered_encodings_keep_values_apart() -> None:
    shared, meta = template()
    encoded = EncodedTemplate(shared, meta)

    first = encode_file(encoded, part("1.2.3.5", "1", 480))
    second = encode_file(encoded, part("1.2.3.5", "1", 481))

    assert first != second
    assert pydicom.dcmread(pydicom.filebase.DicomBytesIO(second)).Rows == 481


def test_write_dataset_is_atomic(tmp_path: Path) -> None:
    shared, meta = template()
    shared.SOPInstanceUID = "1.2.3.5"
    shared.file_meta = meta
    meta.MediaStorageSOPInstanceUID = UID("1.2.3.5")
    path = tmp_path / "file.dcm"

    write_dataset(shared, path)

    assert [entry.name for entry in tmp_path.iterdir()] == ["file.dcm"]
    assert pydicom.dcmread(path).PatientName == "Conceição^Maria"


def test_write_dataset_into_missing_folder(tmp_path: Path) -> None:
    shared, meta = template()
    shared.SOPInstanceUID = "1.2.3.5"
    meta.MediaStorageSOPInstanceUID = UID("1.2.3.5")
    shared.file_meta = meta

    with pytest.raises(ConversionError, match="Cannot write"):
        write_dataset(shared, tmp_path / "missing" / "file.dcm")
