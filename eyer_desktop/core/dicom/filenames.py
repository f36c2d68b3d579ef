"""Output file names that are valid on Windows, macOS and Linux.

Names are built from the Study ID (the capture date and time), the series
number, the instance number and the eye, so they carry no patient data.
"""

from __future__ import annotations

import re

MAX_NAME_LENGTH = 100

# Device names that Windows reserves in every folder, with any extension.
_WINDOWS_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{device}{digit}" for device in ("COM", "LPT") for digit in "0123456789"}
)
# Letters, digits, "-", "_" and "." are safe everywhere; anything else
# (including <>:"/\|?*, controls and non-ASCII letters) becomes "_".
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def safe_filename(
    stem: str, suffix: str = ".dcm", max_length: int = MAX_NAME_LENGTH
) -> str:
    """Return ``stem + suffix`` made safe as a file name on every platform.

    Unsafe characters become "_". Leading dots (hidden files) and trailing
    dots and spaces (dropped by Windows) are removed. A reserved Windows
    device name gets a leading "_". The stem is cut so that the whole name
    has at most ``max_length`` characters.
    """
    cleaned = _UNSAFE.sub("_", stem).strip(". ") or "unnamed"
    if cleaned.split(".")[0].upper() in _WINDOWS_RESERVED:
        cleaned = "_" + cleaned
    cleaned = cleaned[: max(1, max_length - len(suffix))].rstrip(". ")
    return cleaned + suffix


def instance_filename(
    study_id: str, series_number: str, kind: str, instance_number: int, eye: str
) -> str:
    """Return the file name of one instance, for example
    ``20240517143012_7_OP1_R.dcm``.

    Args:
        study_id: The Study ID (capture date and time, YYYYMMDDHHmmss).
        series_number: The Series Number (the exam's sequential number).
        kind: ``OP`` for a captured image, ``MT`` for a montage, ``SMR`` for
            a stereo relationship, so names stay unique across the series of
            one exam, which share the series number.
        instance_number: The Instance Number within its series.
        eye: ``R`` or ``L``.
    """
    return safe_filename(f"{study_id}_{series_number}_{kind}{instance_number}_{eye}")
