"""File names that are safe on Windows, macOS and Linux."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eyer_desktop.core.dicom.filenames import (
    MAX_NAME_LENGTH,
    instance_filename,
    safe_filename,
)

SAFE = re.compile(r"[A-Za-z0-9._-]+")
WINDOWS_RESERVED = {"CON", "PRN", "AUX", "NUL"} | {
    f"{device}{digit}" for device in ("COM", "LPT") for digit in "0123456789"
}


def test_instance_filename() -> None:
    assert instance_filename("20240517143012", "7", "OP", 3, "L") == (
        "20240517143012_7_OP3_L.dcm"
    )


@pytest.mark.parametrize(
    ("stem", "expected"),
    [
        ('a<b>c:d"e/f\\g|h?i*j', "a_b_c_d_e_f_g_h_i_j.dcm"),
        ("CON", "_CON.dcm"),
        ("com1.backup", "_com1.backup.dcm"),
        ("...hidden", "hidden.dcm"),
        ("trailing..", "trailing.dcm"),
        ("trailing. ", "trailing._.dcm"),
        ("", "unnamed.dcm"),
        ("José", "Jos_.dcm"),
    ],
)
def test_unsafe_names_are_fixed(stem: str, expected: str) -> None:
    assert safe_filename(stem) == expected


@given(st.text(), st.integers(min_value=8, max_value=MAX_NAME_LENGTH))
def test_any_text_gives_a_safe_name(stem: str, max_length: int) -> None:
    name = safe_filename(stem, max_length=max_length)

    assert SAFE.fullmatch(name)
    assert name.endswith(".dcm")
    assert len(name) <= max_length
    assert not name.startswith(".")
    assert name.split(".")[0].upper() not in WINDOWS_RESERVED
    assert not name[: -len(".dcm")].endswith((".", " "))
