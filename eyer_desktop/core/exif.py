"""EXIF data read with Pillow, where damaged data counts as no data.

Cameras, phones and editing programs write EXIF blocks that Pillow cannot
parse: a header that is not TIFF, offsets past the end, cut entries. Pillow
then raises SyntaxError, ValueError or struct.error, or warns once per bad
entry. The pixels of such a file are still good, so every EXIF read of the
application goes through this module, which logs one warning and goes on
as if the file had no EXIF data.
"""

from __future__ import annotations

import logging
import struct
import warnings
from collections.abc import Callable

from PIL import Image

logger = logging.getLogger(__name__)

ORIENTATION_TAG = 0x0112

# Pillow transpose that turns an image with this EXIF orientation upright.
_ORIENTATION_TRANSPOSE = {
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_270,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}

_DAMAGED_EXIF_ERRORS = (SyntaxError, ValueError, struct.error)


def read_exif(image: Image.Image, source: object = None) -> Image.Exif:
    """Return the EXIF data of an opened image; empty when damaged.

    ``source`` names the file in the warning; by default the file the image
    was opened from.
    """
    label = source or getattr(image, "filename", "") or "an image"
    return _read(image.getexif, label)


def exif_from_tiff(tiff: bytes, source: object) -> Image.Exif:
    """Return the EXIF data in a TIFF structure (the payload of a JPEG's
    EXIF segment after its identifier); empty when damaged. ``source`` names
    the file in the warning.
    """

    def load() -> Image.Exif:
        exif = Image.Exif()
        exif.load(tiff)
        return exif

    return _read(load, source)


def exif_ifd(exif: Image.Exif, tag: int) -> dict[int, object]:
    """Return a sub-IFD (such as the Exif IFD) of ``exif``; empty when damaged."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return dict(exif.get_ifd(tag))
    except _DAMAGED_EXIF_ERRORS as err:
        _log_damaged(err, "an image")
        return {}


def orientation_transpose(orientation: int | None) -> Image.Transpose | None:
    """Return the transpose that turns an image of this EXIF orientation
    upright, or None when it already is or the value is not valid.
    """
    if orientation is None:
        return None
    return _ORIENTATION_TRANSPOSE.get(orientation)


def exif_orientation(exif: Image.Exif) -> int:
    """Return the Orientation tag (1 to 8), 1 when absent or not valid."""
    value = exif.get(ORIENTATION_TAG, 1)
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def upright(image: Image.Image) -> Image.Image:
    """Return the image turned upright by its EXIF orientation; the image
    itself when it needs no turning.
    """
    transpose = orientation_transpose(exif_orientation(read_exif(image)))
    return image if transpose is None else image.transpose(transpose)


def _read(load: Callable[[], Image.Exif], source: object) -> Image.Exif:
    try:
        with warnings.catch_warnings():
            # Pillow warns of each cut entry and reads on.
            warnings.simplefilter("ignore")
            return load()
    except _DAMAGED_EXIF_ERRORS as err:
        _log_damaged(err, source)
        return Image.Exif()


def _log_damaged(err: Exception, source: object) -> None:
    logger.warning(
        "Ignoring the EXIF data of %s, which cannot be read: %s", source, err
    )
