"""Changes a dataset may need before a server accepts it.

Two changes exist: decoding JPEG Baseline pixel data to native pixels, for a
server that accepts only uncompressed transfer syntaxes, and rewriting an
Ophthalmic Photography image as another image SOP class, for a server that
rejects the OP class itself. Both keep the SOP Instance UID, so a later resend
of the original still replaces the same instance.
"""

from __future__ import annotations

import copy
import io
from enum import StrEnum

from PIL import Image, UnidentifiedImageError
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.encaps import generate_frames
from pydicom.uid import UID, ExplicitVRLittleEndian, JPEGBaseline8Bit

from eyer_desktop.core.errors import ConversionError

OP_8BIT_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.5.1"
STEREOMETRIC_RELATIONSHIP_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.5.3"
VL_PHOTOGRAPHIC_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.77.1.4"
SECONDARY_CAPTURE_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.7"


class StoreFallback(StrEnum):
    """SOP class an OP image is rewritten as when a server rejects OP."""

    NONE = "none"
    VL_PHOTOGRAPHIC = "vl-photographic"
    SECONDARY_CAPTURE = "secondary-capture"

    @property
    def sop_class_uid(self) -> str | None:
        """UID of the fallback SOP class; None for no fallback."""
        return _FALLBACK_SOP_CLASSES.get(self)


_FALLBACK_SOP_CLASSES = {
    StoreFallback.VL_PHOTOGRAPHIC: VL_PHOTOGRAPHIC_IMAGE_STORAGE,
    StoreFallback.SECONDARY_CAPTURE: SECONDARY_CAPTURE_IMAGE_STORAGE,
}

# Pillow's decoded image mode -> (SamplesPerPixel, PhotometricInterpretation).
# Pillow converts a YCbCr JPEG to RGB while decoding it.
_NATIVE_LAYOUTS = {"RGB": (3, "RGB"), "L": (1, "MONOCHROME2")}


def decode_jpeg_baseline(dataset: Dataset) -> Dataset:
    """Return a copy of ``dataset`` with its JPEG Baseline frames decoded.

    The copy has native 8-bit pixels: PhotometricInterpretation RGB with
    PlanarConfiguration 0 for colour, MONOCHROME2 for grey, and transfer syntax
    Explicit VR Little Endian. LossyImageCompression stays ``01`` with its
    ratio and method, because the pixels went through lossy compression.

    Raises:
        ConversionError: The dataset is not JPEG Baseline, or a frame cannot
            be decoded or does not match Rows and Columns.
    """
    transfer_syntax = transfer_syntax_of(dataset)
    if transfer_syntax != JPEGBaseline8Bit:
        raise ConversionError(
            f"Instance {dataset.SOPInstanceUID} has transfer syntax "
            f"{transfer_syntax}, not JPEG Baseline, so it cannot be decoded here."
        )

    frame_count = int(dataset.get("NumberOfFrames", 1) or 1)
    frames = generate_frames(dataset.PixelData, number_of_frames=frame_count)
    decoded = [_decode_frame(dataset, frame) for frame in frames]
    layouts = {layout for layout, _ in decoded}
    if len(layouts) != 1:
        raise ConversionError(
            f"Instance {dataset.SOPInstanceUID} mixes colour and grey frames."
        )
    samples_per_pixel, photometric = layouts.pop()

    native = copy.deepcopy(dataset)
    pixels = b"".join(data for _, data in decoded)
    if len(pixels) % 2:
        pixels += b"\x00"

    # Image Pixel
    native.SamplesPerPixel = samples_per_pixel
    native.PhotometricInterpretation = photometric
    if samples_per_pixel == 3:
        native.PlanarConfiguration = 0
    elif "PlanarConfiguration" in native:
        del native.PlanarConfiguration
    native.PixelData = pixels
    native["PixelData"].VR = "OB"
    native["PixelData"].is_undefined_length = False

    # Lossy compression history (OP Image, VL Image and SC Image modules)
    native.LossyImageCompression = "01"

    native.file_meta = _copy_file_meta(dataset, ExplicitVRLittleEndian)
    return native


def _decode_frame(dataset: Dataset, frame: bytes) -> tuple[tuple[int, str], bytes]:
    try:
        with Image.open(io.BytesIO(frame)) as image:
            image.load()
            mode = image.mode
            size = image.size
            data = image.tobytes() if mode in _NATIVE_LAYOUTS else b""
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise ConversionError(
            f"JPEG frame of instance {dataset.SOPInstanceUID} cannot be decoded "
            f"({err})."
        ) from err

    if mode not in _NATIVE_LAYOUTS:
        raise ConversionError(
            f"JPEG frame of instance {dataset.SOPInstanceUID} decodes to "
            f"{mode} pixels; only colour (RGB) and grey frames can be sent "
            "uncompressed."
        )
    if size != (dataset.Columns, dataset.Rows):
        raise ConversionError(
            f"JPEG frame of instance {dataset.SOPInstanceUID} is {size[0]}x"
            f"{size[1]} pixels but the dataset says {dataset.Columns}x"
            f"{dataset.Rows}."
        )
    return _NATIVE_LAYOUTS[mode], data


def rewrite_as_fallback(dataset: Dataset, fallback: StoreFallback) -> Dataset:
    """Return a copy of an OP image rewritten as the ``fallback`` SOP class.

    The SOP Instance UID, the pixel data and every other attribute stay. Only
    the attributes the fallback IOD needs differently change: VL Photographic
    takes Modality XC and requires the Acquisition Context Sequence (Type 2);
    Secondary Capture requires ConversionType, set to DI (digital interface,
    the image came from the camera's software).

    Raises:
        ValueError: ``fallback`` is ``StoreFallback.NONE``.
    """
    sop_class_uid = fallback.sop_class_uid
    if sop_class_uid is None:
        raise ValueError("fallback must name a SOP class, not StoreFallback.NONE")

    rewritten = copy.deepcopy(dataset)
    rewritten.SOPClassUID = sop_class_uid
    if fallback is StoreFallback.VL_PHOTOGRAPHIC:
        # VL Photographic Series: Modality enumerated value XC
        rewritten.Modality = "XC"
        # Acquisition Context (M in the VL Photographic Image IOD)
        if "AcquisitionContextSequence" not in rewritten:
            rewritten.AcquisitionContextSequence = []
    else:
        # SC Equipment (M in the Secondary Capture Image IOD)
        rewritten.ConversionType = "DI"

    transfer_syntax = transfer_syntax_of(dataset) or ExplicitVRLittleEndian
    rewritten.file_meta = _copy_file_meta(rewritten, transfer_syntax)
    return rewritten


def transfer_syntax_of(dataset: Dataset) -> str | None:
    """Return the Transfer Syntax UID of the dataset's file meta, if it has one."""
    file_meta = getattr(dataset, "file_meta", None)
    if file_meta is None:
        return None
    value = file_meta.get("TransferSyntaxUID")
    return None if value is None else str(value)


def _copy_file_meta(dataset: Dataset, transfer_syntax: str) -> FileMetaDataset:
    source = getattr(dataset, "file_meta", None)
    file_meta = FileMetaDataset(copy.deepcopy(source) if source else Dataset())
    file_meta.TransferSyntaxUID = UID(transfer_syntax)
    file_meta.MediaStorageSOPClassUID = dataset.SOPClassUID
    file_meta.MediaStorageSOPInstanceUID = dataset.SOPInstanceUID
    return file_meta
