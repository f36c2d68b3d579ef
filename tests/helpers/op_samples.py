"""Sample JPEG Baseline Ophthalmic Photography instances for network tests.

The images are Pillow drawings of a fundus-like disc with vessels, seeded so
every run produces the same bytes. The datasets carry the attributes a
storage server and the network code look at (SOP Common, Patient, Study,
Series, Image Pixel, Multi-frame, lossy compression); they are not complete
OP IODs, which the project's converter produces.
"""

from __future__ import annotations

import io
import random
from pathlib import Path

from PIL import Image, ImageDraw
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.uid import JPEGBaseline8Bit, generate_uid

from eyer_desktop.core.uids import IMPLEMENTATION_CLASS_UID

OP_8BIT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.5.1"


def make_fundus_jpeg(
    width: int = 320,
    height: int = 240,
    *,
    quality: int = 92,
    seed: int = 0,
    grey: bool = False,
    grain: float = 0.0,
) -> bytes:
    """Draw a fundus-like image and return it as baseline JPEG bytes (4:2:0).

    ``grain`` (0 to 1) blends in Gaussian noise, which makes the JPEG as
    large as a real fundus photograph of the same size.
    """
    rng = random.Random(seed)
    image = Image.new("RGB", (width, height), (20, 8, 4))
    draw = ImageDraw.Draw(image)
    radius = min(width, height) * 0.48
    centre = (width / 2, height / 2)
    draw.ellipse(
        (
            centre[0] - radius,
            centre[1] - radius,
            centre[0] + radius,
            centre[1] + radius,
        ),
        fill=(190 + rng.randrange(30), 70 + rng.randrange(30), 30),
    )
    disc = (centre[0] + radius * 0.35, centre[1])
    disc_radius = radius * 0.12
    draw.ellipse(
        (
            disc[0] - disc_radius,
            disc[1] - disc_radius,
            disc[0] + disc_radius,
            disc[1] + disc_radius,
        ),
        fill=(245, 215, 140),
    )
    for _ in range(14):
        end = (
            centre[0] + rng.uniform(-radius, radius),
            centre[1] + rng.uniform(-radius, radius),
        )
        draw.line([disc, end], fill=(120, 20, 15), width=max(1, width // 200))

    if grain > 0:
        noise = Image.effect_noise((width, height), 64).convert("RGB")
        image = Image.blend(image, noise, grain)
    if grey:
        image = image.convert("L")
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality, subsampling="4:2:0")
    return buffer.getvalue()


def jpeg_size(jpeg: bytes) -> tuple[int, int, str]:
    """Return width, height and Pillow mode of a JPEG stream."""
    with Image.open(io.BytesIO(jpeg)) as image:
        return image.width, image.height, image.mode


def make_op_dataset(
    jpeg: bytes,
    *,
    sop_instance_uid: str | None = None,
    study_instance_uid: str = "2.25.1000",
    series_instance_uid: str = "2.25.1001",
    patient_name: str = "TESTE^PACIENTE",
    instance_number: int = 1,
) -> Dataset:
    """Wrap ``jpeg`` as an OP 8 Bit Image instance in JPEG Baseline."""
    width, height, mode = jpeg_size(jpeg)
    ds = Dataset()

    # SOP Common
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = OP_8BIT_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_instance_uid or generate_uid(prefix=None)

    # Patient and General Study
    ds.PatientName = patient_name
    ds.PatientID = "TEST0001"
    ds.PatientBirthDate = "19580302"
    ds.PatientSex = "F"
    ds.StudyInstanceUID = study_instance_uid
    ds.StudyDate = "20260101"
    ds.StudyTime = "093000"
    ds.StudyID = "20260101093000"
    ds.AccessionNumber = ""
    ds.ReferringPhysicianName = ""

    # General Series and General Equipment
    ds.Modality = "OP"
    ds.SeriesInstanceUID = series_instance_uid
    ds.SeriesNumber = 1
    ds.Manufacturer = "Phelcom Technologies"

    # General Image and OP Image
    ds.InstanceNumber = instance_number
    ds.ImageType = ["ORIGINAL", "PRIMARY", "", "COLOR"]
    ds.ImageLaterality = "R"
    ds.LossyImageCompression = "01"
    ds.LossyImageCompressionMethod = "ISO_10918_1"
    ds.LossyImageCompressionRatio = f"{width * height * 3 / len(jpeg):.2f}"

    # Image Pixel and Multi-frame
    colour = mode != "L"
    ds.SamplesPerPixel = 3 if colour else 1
    ds.PhotometricInterpretation = "YBR_FULL_422" if colour else "MONOCHROME2"
    if colour:
        ds.PlanarConfiguration = 0
    ds.Rows = height
    ds.Columns = width
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0
    ds.NumberOfFrames = 1
    ds.FrameIncrementPointer = 0x00181063
    ds.FrameTime = 0
    ds.PixelData = encapsulate([jpeg])
    ds["PixelData"].VR = "OB"

    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = JPEGBaseline8Bit
    ds.file_meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.ImplementationClassUID = IMPLEMENTATION_CLASS_UID
    return ds


def write_op_files(
    folder: Path,
    count: int,
    *,
    width: int = 320,
    height: int = 240,
    quality: int = 92,
    grain: float = 0.0,
) -> list[Path]:
    """Write ``count`` OP files with distinct seeded images; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        jpeg = make_fundus_jpeg(width, height, quality=quality, seed=index, grain=grain)
        dataset = make_op_dataset(jpeg, instance_number=index + 1)
        path = folder / f"op{index:04d}.dcm"
        dataset.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths
