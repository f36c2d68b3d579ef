"""Small JPEG Baseline Ophthalmic Photography instances for the DICOMweb tests.

The pixels are seeded noise, so every run writes the same bytes and the JPEG
stream does not shrink much, which lets a test build a body of a chosen size.
The datasets carry what a storage server indexes; they are not complete OP
IODs, which the project's converter writes.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import UID, JPEGBaseline8Bit

OP_8BIT_IMAGE_STORAGE = UID("1.2.840.10008.5.1.4.1.1.77.1.5.1")


def make_jpeg(width: int, height: int, seed: int) -> bytes:
    """Return a baseline JPEG of seeded RGB noise."""
    rng = random.Random(seed)
    image = Image.frombytes("RGB", (width, height), rng.randbytes(width * height * 3))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def make_instance(
    sop_instance_uid: str,
    *,
    patient_id: str = "STOW-TEST",
    width: int = 64,
    height: int = 48,
    seed: int = 0,
) -> Dataset:
    """Return an OP 8 Bit Image instance whose pixel data is one JPEG frame."""
    dataset = Dataset()

    # SOP Common, Patient, General Study, General Series
    dataset.SOPClassUID = OP_8BIT_IMAGE_STORAGE
    dataset.SOPInstanceUID = sop_instance_uid
    dataset.PatientName = "Stow^Test"
    dataset.PatientID = patient_id
    dataset.StudyInstanceUID = "2.25.7001"
    dataset.SeriesInstanceUID = "2.25.7002"
    dataset.StudyDate = "20260105"
    dataset.Modality = "OP"
    dataset.InstanceNumber = 1

    # Image Pixel
    dataset.SamplesPerPixel = 3
    dataset.PhotometricInterpretation = "YBR_FULL_422"
    dataset.PlanarConfiguration = 0
    dataset.Rows = height
    dataset.Columns = width
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelRepresentation = 0
    dataset.NumberOfFrames = 1
    dataset.PixelData = encapsulate([make_jpeg(width, height, seed)])
    dataset["PixelData"].VR = "OB"

    dataset.file_meta = FileMetaDataset()
    dataset.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    dataset.file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    dataset.file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return dataset


def instance_bytes(dataset: Dataset) -> bytes:
    """Return ``dataset`` as a Part 10 file."""
    buffer = io.BytesIO()
    dataset.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def write_instance(folder: Path, dataset: Dataset) -> Path:
    """Write ``dataset`` as a Part 10 file named after its SOP Instance UID."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{dataset.SOPInstanceUID}.dcm"
    dataset.save_as(path, enforce_file_format=True)
    return path


def pixel_data_of(part10: bytes) -> bytes:
    """Return the raw Pixel Data value of a Part 10 file."""
    value: bytes = dcmread(io.BytesIO(part10)).PixelData
    return value
