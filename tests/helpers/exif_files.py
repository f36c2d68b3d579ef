"""JPEG files with EXIF blocks, whole or damaged, for the EXIF tests."""

from __future__ import annotations

import io

from PIL import Image

NOT_TIFF = b"not a TIFF header at all"


def jpeg_with_exif(exif_payload: bytes) -> bytes:
    """Return a 40x20 JPEG whose APP1 segment is ``Exif\\0\\0`` and the payload.

    Its JFIF segment gives the resolution in dots per inch, as cameras write
    it. Without one, Pillow reads the EXIF data while opening the file, to
    find a resolution there, and hides a damaged block from later reads.
    """
    buffer = io.BytesIO()
    Image.new("RGB", (40, 20), (200, 80, 40)).save(buffer, "JPEG", dpi=(96, 96))
    jpeg = buffer.getvalue()
    segment = b"Exif\x00\x00" + exif_payload
    length = (len(segment) + 2).to_bytes(2, "big")
    return jpeg[:2] + b"\xff\xe1" + length + segment + jpeg[2:]


def tiff_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return exif.tobytes()[len(b"Exif\x00\x00") :]
