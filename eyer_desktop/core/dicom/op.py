"""The Ophthalmic Photography 8 Bit Image dataset (PS3.3 A.41).

The dataset is filled in blocks headed by the module they fill, in the order
of the IOD's module table.

Image Type value 4 and the channel description follow the exam type:

* colour, stereo and panoramic images: ``COLOR`` when the JPEG has three
  components;
* red-free images: ``REDFREE``; a one-component red-free image also gets
  Channel Description (405739002, SCT, "Red free");
* texture images (the camera's retinal nerve fibre layer mode) are colour
  photographs, so ``COLOR``;
* a one-component image of any exam type other than red-free has no value 4
  and no channel description: for MONOCHROME2 the natural interpretation is
  the full visible spectrum, and claiming a filter would be a guess.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import encapsulate
from pydicom.tag import Tag
from pydicom.uid import JPEGBaseline8Bit

from eyer_desktop.core.dicom.context import ExamContext
from eyer_desktop.core.dicom.modules import (
    Code,
    SeriesInfo,
    add_general_equipment,
    add_general_series,
    add_general_study,
    add_patient,
    add_sop_common,
    file_meta,
    reference_item,
)
from eyer_desktop.core.dicom.pixels import EncodedImage
from eyer_desktop.core.exams import ExamType, ImageRole

OP_8BIT_SOP_CLASS_UID = "1.2.840.10008.5.1.4.1.1.77.1.5.1"

# Nominal optics of the camera: a 45 degree field of view, and about
# 0.288 mm of retina per degree of visual angle in a standard eye.
# NOTE: 45 degrees is the field of view published for the Eyer, not a
# calibration; a calibrated mm per pixel for each model and image size from
# Phelcom would make Pixel Spacing exact.
HORIZONTAL_FIELD_OF_VIEW = 45.0
RETINA_MM_PER_DEGREE = 0.288

FUNDUS_CAMERA = Code("409898007", "SCT", "Fundus Camera")
EYE = Code("81745001", "SCT", "Eye")
RETINA = Code("5665001", "SCT", "Retina")
RED_FREE_CHANNEL = Code("405739002", "SCT", "Red free")
STEREO_PARTNER = Code("121315", "DCM", "Other image of stereoscopic pair")
MONTAGE_SOURCE = Code("121329", "DCM", "Source image for montage")
IMAGE_STITCHING = Code("113090", "DCM", "Image stitching")


@dataclass(frozen=True)
class ImageReferences:
    """Other instances an OP image refers to.

    Attributes:
        stereo_partner_uid: SOP Instance UID of the other image of its stereo
            pair, or None.
        montage_source_uids: For a montage, the SOP Instance UIDs of the
            fields it was stitched from.
    """

    stereo_partner_uid: str | None = None
    montage_source_uids: tuple[str, ...] = ()


def nominal_pixel_spacing(
    rows: int, columns: int, aspect_ratio: tuple[int, int] | None = None
) -> tuple[float, float]:
    """Return the nominal (row, column) spacing in mm at the retina.

    The 45 degree field is taken to span the smaller image dimension. This is
    an estimate from the nominal optics, not a calibration of the camera.
    """
    column_spacing = (
        HORIZONTAL_FIELD_OF_VIEW * RETINA_MM_PER_DEGREE / min(rows, columns)
    )
    row_spacing = column_spacing
    if aspect_ratio is not None:
        vertical, horizontal = aspect_ratio
        row_spacing = column_spacing * vertical / horizontal
    return row_spacing, column_spacing


def format_ds(value: float) -> str:
    """Format a decimal string of at most 16 characters."""
    return f"{value:.6g}"


@dataclass(frozen=True)
class ImageAttributes:
    """Values that differ between the OP images of one series."""

    role: ImageRole
    laterality: str
    sop_instance_uid: str
    instance_number: int
    encoded: EncodedImage
    pixel_spacing: tuple[float, float]
    references: ImageReferences


def build_series_template(context: ExamContext, series: SeriesInfo) -> Dataset:
    """Return the attributes that every OP image of one series shares.

    Only :func:`build_image_part` adds what differs between images, so a
    writer can encode the template once per series.
    """
    ds = Dataset()

    # Patient
    add_patient(ds, context)

    # General Study
    add_general_study(ds, context)

    # General Series, Ophthalmic Photography Series
    add_general_series(ds, context, series)

    # Synchronization
    ds.SynchronizationFrameOfReferenceUID = (
        context.exam.uids.synchronization_frame_of_reference_uid
    )
    ds.SynchronizationTrigger = "NO TRIGGER"
    ds.AcquisitionTimeSynchronized = "N"

    # General Equipment
    add_general_equipment(ds, context)

    # General Image (partly overridden by Ophthalmic Photography Image)
    ds.PatientOrientation = ["L", "F"]
    ds.ContentDate = context.capture_date
    ds.ContentTime = context.capture_time

    # Image Pixel: the 8-bit layout that the IOD fixes
    ds.BitsAllocated = 8
    ds.BitsStored = 8
    ds.HighBit = 7
    ds.PixelRepresentation = 0

    # Multi-frame (required even for one frame), pointing at Frame Time
    ds.NumberOfFrames = "1"
    ds.FrameIncrementPointer = Tag("FrameTime")
    ds.FrameTime = "0"

    # Ophthalmic Photography Image
    ds.AcquisitionDateTime = context.acquisition_datetime
    ds.LossyImageCompression = "01"
    ds.BurnedInAnnotation = "NO"

    # Ocular Region Imaged
    ds.AnatomicRegionSequence = [EYE.item()]
    ds.PrimaryAnatomicStructureSequence = [RETINA.item()]

    # Ophthalmic Photography Acquisition Parameters
    _add_acquisition_parameters(ds, context)

    # Ophthalmic Photographic Parameters
    ds.AcquisitionDeviceTypeCodeSequence = [FUNDUS_CAMERA.item()]
    ds.IlluminationTypeCodeSequence = []
    ds.LightPathFilterTypeStackCodeSequence = []
    ds.ImagePathFilterTypeStackCodeSequence = []
    ds.LensesCodeSequence = []
    ds.DetectorType = "CMOS"

    # SOP Common
    add_sop_common(ds, context, OP_8BIT_SOP_CLASS_UID)
    return ds


# One attribute of an image: its keyword and value. Multiple values are
# tuples, so that equal attributes of different images compare and hash
# equal and a writer can reuse their encoding.
ImageElement = tuple[str, Any]


def image_elements(context: ExamContext, image: ImageAttributes) -> list[ImageElement]:
    """Return the attributes of one OP image that its series does not share,
    Pixel Data excepted, as (keyword, value) pairs in module order.
    """
    elements: list[ImageElement] = []
    add = elements.append
    encoded = image.encoded
    references = image.references
    montage = image.role is ImageRole.MONTAGE
    monochrome = encoded.samples_per_pixel == 1
    red_free = context.exam.exam_type is ExamType.RED_FREE

    # General Image
    add(("InstanceNumber", str(image.instance_number)))
    derivation = _derivation_description(encoded, montage)
    if derivation:
        add(("DerivationDescription", derivation))
    if montage:
        add(("DerivationCodeSequence", [IMAGE_STITCHING.item()]))

    # General Reference
    if references.stereo_partner_uid is not None:
        partner = reference_item(
            OP_8BIT_SOP_CLASS_UID, references.stereo_partner_uid, STEREO_PARTNER
        )
        add(("ReferencedImageSequence", [partner]))

    # Image Pixel, Pixel Data excepted
    add(("SamplesPerPixel", encoded.samples_per_pixel))
    add(("PhotometricInterpretation", encoded.photometric_interpretation))
    if encoded.samples_per_pixel == 3:
        add(("PlanarConfiguration", 0))
    add(("Rows", encoded.rows))
    add(("Columns", encoded.columns))

    # Ophthalmic Photography Image
    add(
        (
            "ImageType",
            image_type(context.exam.exam_type, image.role, encoded.samples_per_pixel),
        )
    )
    add(("PixelSpacing", tuple(format_ds(value) for value in image.pixel_spacing)))
    if montage:
        sources = [
            reference_item(OP_8BIT_SOP_CLASS_UID, uid, MONTAGE_SOURCE)
            for uid in references.montage_source_uids
        ]
        add(("SourceImageSequence", sources))
    ratios = encoded.compression_ratios
    add(("LossyImageCompressionRatio", tuple(format_ds(ratio) for ratio in ratios)))
    add(("LossyImageCompressionMethod", ("ISO_10918_1",) * len(ratios)))
    if monochrome:
        add(("PresentationLUTShape", "IDENTITY"))

    # Ocular Region Imaged
    add(("ImageLaterality", image.laterality))

    # Ophthalmic Photographic Parameters
    if red_free and monochrome:
        add(("ChannelDescriptionCodeSequence", [RED_FREE_CHANNEL.item()]))

    # ICC Profile
    if encoded.icc_profile is not None:
        add(("ICCProfile", encoded.icc_profile))
        if encoded.color_space is not None:
            add(("ColorSpace", encoded.color_space))

    # SOP Common
    add(("SOPInstanceUID", image.sop_instance_uid))
    return elements


def build_image_part(context: ExamContext, image: ImageAttributes) -> Dataset:
    """Return the attributes of one OP image that its series does not share,
    Pixel Data included, as a dataset.
    """
    ds = Dataset()
    for keyword, value in image_elements(context, image):
        setattr(ds, keyword, list(value) if isinstance(value, tuple) else value)
    ds.PixelData = encapsulate([image.encoded.jpeg])
    pixel_data = ds["PixelData"]
    pixel_data.VR = "OB"
    pixel_data.is_undefined_length = True
    return ds


def op_file_meta(
    context: ExamContext, sop_instance_uid: str | None = None
) -> FileMetaDataset:
    """Return the file meta information of an OP image (JPEG Baseline),
    without Media Storage SOP Instance UID when no UID is given.
    """
    return file_meta(context, OP_8BIT_SOP_CLASS_UID, sop_instance_uid, JPEGBaseline8Bit)


def build_op_dataset(
    context: ExamContext, template: Dataset, image: ImageAttributes
) -> Dataset:
    """Return the complete OP 8 Bit Image dataset of one image, file meta
    included. The template is copied, not changed.
    """
    ds = copy.deepcopy(template)
    ds.update(build_image_part(context, image))
    ds.file_meta = op_file_meta(context, image.sop_instance_uid)
    return ds


def image_type(exam_type: ExamType, role: ImageRole, samples: int) -> tuple[str, ...]:
    """Return Image Type (C.8.17.2.1.4) of an image.

    Value 3 is ``MONTAGE`` for a montage and empty otherwise; the empty value
    is written only when value 4 follows it.
    """
    colour = _colour_term(exam_type, samples)
    if role is ImageRole.MONTAGE:
        values: tuple[str, ...] = ("DERIVED", "PRIMARY", "MONTAGE")
        return (*values, colour) if colour else values
    values = ("ORIGINAL", "PRIMARY")
    return (*values, "", colour) if colour else values


def _colour_term(exam_type: ExamType, samples: int) -> str | None:
    if exam_type is ExamType.RED_FREE:
        return "REDFREE"
    return "COLOR" if samples == 3 else None


def _derivation_description(encoded: EncodedImage, montage: bool) -> str:
    parts: list[str] = []
    if montage:
        parts.append("Montage stitched from the referenced fields.")
    source = encoded.reencoded_from
    if source is not None and encoded.reencode_quality is not None:
        parts.append(
            f"Re-encoded as baseline JPEG (quality {encoded.reencode_quality}) "
            f"from {source}."
        )
    elif source is not None:
        parts.append(
            f"Converted to baseline 8-bit JPEG from {source} by requantizing "
            f"its DCT coefficients."
        )
    return " ".join(parts)


def _add_acquisition_parameters(ds: Dataset, context: ExamContext) -> None:
    # The fixation target is not recorded, so eye movement stays unknown.
    ds.PatientEyeMovementCommanded = ""
    ds.HorizontalFieldOfView = HORIZONTAL_FIELD_OF_VIEW
    # The camera's focus diopters are not a refraction: they go to Patient
    # Comments, and the refractive state stays empty.
    ds.RefractiveStateSequence = []
    ds.EmmetropicMagnification = None
    ds.IntraOcularPressure = None
    ds.PupilDilated = context.pupil_dilated
    if context.pupil_dilated == "YES":
        ds.MydriaticAgentSequence = []
        ds.DegreeOfDilation = None
