"""Deciding how an image file becomes OP 8 Bit pixel data.

A baseline 8-bit greyscale or YCbCr JPEG is embedded unchanged, with its
metadata segments stripped and without decoding a pixel. Pillow decodes
every other input it can read: progressive, extended or arithmetic-coded
JPEG, CMYK, RGB without colour transform, EXIF-rotated JPEG and PNG. Such an
image is turned upright and re-encoded as baseline JPEG at quality 95, so no
file carries a transfer syntax that its pixel data does not match.

Pillow cannot decode 12-bit JPEG. A 12-bit sequential Huffman-coded JPEG is
first transcoded to a baseline 8-bit JPEG in the DCT domain
(:mod:`eyer_desktop.core.dicom.jpeg12`), which is then embedded or re-encoded
like any 8-bit JPEG. Other JPEG with more than 8 bits per sample (12-bit
progressive or arithmetic-coded, lossless) is rejected.
"""

from __future__ import annotations

import functools
import io
import logging
import struct
from dataclasses import dataclass, replace

from PIL import Image, ImageCms

from eyer_desktop.core.dicom.jpeg import (
    JpegFormatError,
    JpegStructure,
    is_jpeg,
    parse_jpeg,
)
from eyer_desktop.core.dicom.jpeg12 import (
    UnsupportedJpegError,
    transcode_problem,
    transcode_to_baseline,
)
from eyer_desktop.core.exif import exif_orientation, orientation_transpose, read_exif

logger = logging.getLogger(__name__)

# Images above this many pixels are rejected before any decoding. 80
# megapixels is far above a fundus camera image (a few megapixels) or a
# stitched montage of such images. It stays below Pillow's own decompression
# bomb warning threshold (89,478,485 pixels in Pillow 13), so a decode never
# raises that warning.
DEFAULT_MAX_PIXELS = 80_000_000

REENCODE_QUALITY = 95

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


# DICOM Color Space (0028,2002) defined terms, keyed by a word of the ICC
# profile description.
_COLOR_SPACES = (("sRGB", "SRGB"), ("Adobe RGB", "ADOBERGB"), ("ROMM", "ROMMRGB"))


_EXPORT_8_BIT = "export the image as an 8-bit JPEG or as a PNG"


class ImageInputError(ValueError):
    """The image bytes cannot be turned into OP 8 Bit pixel data.

    The message completes the sentence "The image ...", with the fix after a
    semicolon when the problem has a fix of its own.

    Attributes:
        problem: What is wrong, completing "The image ...".
        fix: What the user should do, or None when copying the file again is
            the only remedy (a damaged or truncated file).
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        super().__init__(f"{problem}; {fix}" if fix else problem)
        self.problem = problem
        self.fix = fix


@dataclass(frozen=True)
class EncodedImage:
    """Baseline JPEG pixel data ready to be encapsulated.

    Attributes:
        pieces: The baseline JPEG stream, SOI to EOI, as consecutive buffers
            (see :attr:`jpeg` for one piece).
        rows: Number of rows, from the stream's frame header.
        columns: Number of columns, from the stream's frame header.
        samples_per_pixel: 1 (greyscale) or 3 (YCbCr).
        icc_profile: ICC profile of a colour image, or None.
        color_space: DICOM Color Space defined term of the ICC profile, or None.
        pixel_aspect_ratio: Vertical and horizontal pixel size ratio when the
            pixels are not square, else None.
        compression_ratios: Lossy compression ratio of each JPEG encoding the
            pixels went through, oldest first.
        reencoded_from: What the source was, when the pixels were re-encoded
            or transcoded (for example "a progressive (SOF2) JPEG"); None for
            passthrough.
        reencode_quality: JPEG quality of the Pillow encoding that made the
            pixels, or None when no pixel was decoded (passthrough, or a
            12-bit JPEG transcoded without leaving the DCT domain).
    """

    pieces: tuple[bytes | memoryview, ...]
    rows: int
    columns: int
    samples_per_pixel: int
    icc_profile: bytes | None
    color_space: str | None
    pixel_aspect_ratio: tuple[int, int] | None
    compression_ratios: tuple[float, ...]
    reencoded_from: str | None
    reencode_quality: int | None = None

    @functools.cached_property
    def jpeg(self) -> bytes:
        """The baseline JPEG stream in one piece."""
        return b"".join(self.pieces)

    @property
    def photometric_interpretation(self) -> str:
        """YBR_FULL_422 for any YCbCr JPEG (the only YCbCr term the OP IOD
        allows for lossy JPEG, whatever the subsampling), else MONOCHROME2.
        """
        return "YBR_FULL_422" if self.samples_per_pixel == 3 else "MONOCHROME2"


def image_size(data: bytes) -> tuple[int, int]:
    """Return (columns, rows) from a JPEG frame header or a PNG IHDR chunk."""
    if data.startswith(PNG_SIGNATURE):
        return _png_size(data)
    if is_jpeg(data):
        structure = _parse(data)
        return structure.columns, structure.rows
    raise ImageInputError("is neither a JPEG nor a PNG file")


def encode_image(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> EncodedImage:
    """Turn JPEG or PNG bytes into baseline JPEG pixel data for OP 8 Bit.

    Raises:
        ImageInputError: The bytes are damaged, truncated, too large, or of a
            kind that cannot be stored as 8-bit pixels. The message completes
            the sentence "The image ...".
    """
    if data.startswith(PNG_SIGNATURE):
        columns, rows = _png_size(data)
        _check_pixel_count(columns, rows, max_pixels)
        return _reencode(data, "a PNG image", earlier_ratios=(), orientation=None)

    if not is_jpeg(data):
        raise ImageInputError(
            "is neither a JPEG nor a PNG file", "export it from the camera as JPEG"
        )
    structure = _parse(data)
    _check_pixel_count(structure.columns, structure.rows, max_pixels)
    if structure.precision != 8:
        return _from_high_precision(data, structure)
    _check_component_count(structure)

    problem = structure.baseline_problem()
    if problem is None:
        return _passthrough(structure)
    logger.info("Re-encoding %s as baseline JPEG", problem)
    source_ratio = _ratio(structure, structure.stripped_length)
    return _reencode(
        data,
        problem,
        earlier_ratios=(source_ratio,),
        orientation=structure.exif_orientation,
    )


def _parse(data: bytes) -> JpegStructure:
    try:
        return parse_jpeg(data)
    except JpegFormatError as err:
        raise ImageInputError(f"is not a valid JPEG: {err}") from err


def _png_size(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ImageInputError("is not a valid PNG: its IHDR chunk is missing")
    columns, rows = struct.unpack_from(">II", data, 16)
    return columns, rows


def _check_pixel_count(columns: int, rows: int, max_pixels: int) -> None:
    if columns * rows > max_pixels:
        raise ImageInputError(
            f"declares {columns}x{rows} pixels ({columns * rows / 1e6:.0f} "
            f"megapixels), over the limit of {max_pixels / 1e6:.0f} megapixels; "
            f"the file is damaged or is not a retinal image"
        )


def _check_component_count(structure: JpegStructure) -> None:
    if len(structure.components) not in (1, 3, 4):
        raise ImageInputError(
            f"has {len(structure.components)} colour components",
            "export it as an RGB or greyscale JPEG",
        )


def _from_high_precision(data: bytes, structure: JpegStructure) -> EncodedImage:
    """Transcode a 12-bit JPEG to baseline 8-bit JPEG, then embed it, or
    re-encode it when it still needs turning upright or a colour transform.
    """
    problem = transcode_problem(structure)
    if problem is not None:
        raise ImageInputError(
            f"is {problem}, which cannot be converted to the 8-bit samples that "
            f"OP 8 Bit stores",
            _EXPORT_8_BIT,
        )

    source = f"a {structure.precision}-bit {structure.frame_name} JPEG"
    logger.info("Transcoding %s to baseline 8-bit JPEG", source)
    try:
        baseline = transcode_to_baseline(data)
    except JpegFormatError as err:
        raise ImageInputError(f"is not a valid JPEG: {err}") from err
    except UnsupportedJpegError as err:
        raise ImageInputError(
            f"is {source} that cannot be converted to 8 bits: {err}",
            _EXPORT_8_BIT,
        ) from err

    transcoded = parse_jpeg(baseline)
    ratios = (
        _ratio(structure, structure.stripped_length),
        _ratio(transcoded, transcoded.stripped_length),
    )
    problem = transcoded.baseline_problem()
    if problem is None:
        return replace(
            _passthrough(transcoded), compression_ratios=ratios, reencoded_from=source
        )
    logger.info("Re-encoding %s as baseline JPEG", problem)
    return _reencode(
        baseline,
        f"{source} ({problem} after conversion to 8 bits)",
        earlier_ratios=ratios,
        orientation=transcoded.exif_orientation,
    )


def _passthrough(structure: JpegStructure) -> EncodedImage:
    samples = len(structure.components)
    icc_profile = structure.icc_profile if samples == 3 else None
    return EncodedImage(
        pieces=structure.pieces,
        rows=structure.rows,
        columns=structure.columns,
        samples_per_pixel=samples,
        icc_profile=icc_profile,
        color_space=_color_space(icc_profile),
        pixel_aspect_ratio=_pixel_aspect_ratio(structure),
        compression_ratios=(_ratio(structure, structure.stripped_length),),
        reencoded_from=None,
    )


def _ratio(structure: JpegStructure, size: int) -> float:
    # The uncompressed size counts the sample bits without padding, as dcmtk
    # 3.6.7 does for the ratio it writes: 12-bit samples take 1.5 bytes.
    samples = structure.rows * structure.columns * len(structure.components)
    return samples * structure.precision / 8 / size


def _pixel_aspect_ratio(structure: JpegStructure) -> tuple[int, int] | None:
    density = structure.jfif_density
    if density is None or density.x == density.y or 0 in (density.x, density.y):
        return None
    # A pixel's height over its width is x density over y density.
    return density.x, density.y


def _color_space(icc_profile: bytes | None) -> str | None:
    if icc_profile is None:
        return None
    try:
        profile = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
        description = ImageCms.getProfileDescription(profile)
    except (OSError, ImageCms.PyCMSError):
        return None
    for word, term in _COLOR_SPACES:
        if word.lower() in description.lower():
            return term
    return None


def _reencode(
    data: bytes,
    source: str,
    *,
    earlier_ratios: tuple[float, ...],
    orientation: int | None,
) -> EncodedImage:
    """Decode with Pillow, turn upright and encode as baseline JPEG.

    ``earlier_ratios`` are the compression ratios of the lossy JPEG encodings
    that the pixels went through before, oldest first. ``orientation`` is the
    EXIF orientation already read from a JPEG; None lets Pillow read it (from
    a PNG's eXIf chunk).
    """
    try:
        with Image.open(io.BytesIO(data)) as opened:
            opened.load()
            if orientation is None:
                orientation = exif_orientation(read_exif(opened))
            icc_profile = opened.info.get("icc_profile") or None
            image, icc_profile = _to_rgb_or_grey(opened, icc_profile)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as err:
        raise ImageInputError(f"cannot be decoded ({source}): {err}") from err

    transpose = orientation_transpose(orientation)
    if transpose is not None:
        image = image.transpose(transpose)

    buffer = io.BytesIO()
    options = {"subsampling": 0} if image.mode == "RGB" else {}
    image.save(buffer, "JPEG", quality=REENCODE_QUALITY, **options)
    structure = parse_jpeg(buffer.getvalue())
    if structure.baseline_problem() is not None:
        raise ImageInputError(f"could not be re-encoded as baseline JPEG ({source})")

    ratios = (*earlier_ratios, _ratio(structure, structure.stripped_length))
    colour_profile = icc_profile if image.mode == "RGB" else None
    return EncodedImage(
        pieces=structure.pieces,
        rows=structure.rows,
        columns=structure.columns,
        samples_per_pixel=len(structure.components),
        icc_profile=colour_profile,
        color_space=_color_space(colour_profile),
        pixel_aspect_ratio=None,
        compression_ratios=ratios,
        reencoded_from=source,
        reencode_quality=REENCODE_QUALITY,
    )


def _to_rgb_or_grey(
    image: Image.Image, icc_profile: bytes | None
) -> tuple[Image.Image, bytes | None]:
    """Return the image as mode RGB or L, and the ICC profile that applies."""
    mode = image.mode
    if mode in ("RGB", "L"):
        return image.copy(), icc_profile
    if mode == "CMYK":
        return _cmyk_to_rgb(image, icc_profile)
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit greyscale: scale 0..65535 to 0..255 instead of clipping.
        scaled = image.convert("I").point(lambda value: value * (1 / 257))
        return scaled.convert("L"), None
    if mode == "1":
        return image.convert("L"), None
    if mode == "LA":
        return _flatten(image.convert("RGBA")).convert("L"), None
    return _flatten(image.convert("RGBA")), icc_profile


def _flatten(image: Image.Image) -> Image.Image:
    """Composite an RGBA image over black, the background of a fundus photo."""
    background = Image.new("RGB", image.size, (0, 0, 0))
    background.paste(image, mask=image.getchannel("A"))
    return background


def _cmyk_to_rgb(
    image: Image.Image, icc_profile: bytes | None
) -> tuple[Image.Image, bytes | None]:
    if icc_profile is not None:
        try:
            source = ImageCms.ImageCmsProfile(io.BytesIO(icc_profile))
            srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
            converted = ImageCms.profileToProfile(image, source, srgb, outputMode="RGB")
        except (OSError, ImageCms.PyCMSError) as err:
            logger.info("Ignoring an unusable CMYK ICC profile: %s", err)
        else:
            if converted is not None:
                return converted, srgb.tobytes()
    return image.convert("RGB"), None
