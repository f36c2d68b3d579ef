"""Character sets, transliteration and encoded lengths."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eyer_desktop.core.dicom.charset import (
    CharacterSet,
    check_identifier,
    check_length,
    clean_line,
    encoded_length,
    person_name,
    transliterate_latin1,
    truncate_encoded,
)
from eyer_desktop.core.errors import ConversionError

UTF8 = CharacterSet.UTF8
LATIN1 = CharacterSet.LATIN1


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("“visão turva”", '"visão turva"'),
        ("‘sim’", "'sim'"),
        ("2019–2024 — há anos…", "2019-2024 - há anos..."),
        ("R$ 10 ou 2 €", "R$ 10 ou 2 EUR"),
        ("Łódź Œuvre", "Lódz OEuvre"),
        ("Ferenc Győző", "Ferenc Gyozo"),
        ("a\u200bb\u2009c", "ab c"),
        ("olho 👁", "olho ?"),
        ("Conceição Müller ñ ¿", "Conceição Müller ñ ¿"),
    ],
)
def test_transliteration(text: str, expected: str) -> None:
    assert transliterate_latin1(text) == expected


@given(st.text())
def test_transliteration_is_always_latin1(text: str) -> None:
    transliterate_latin1(text).encode("latin-1")


@given(st.text(alphabet=st.characters(max_codepoint=0xFF)))
def test_latin1_text_is_unchanged(text: str) -> None:
    assert transliterate_latin1(text) == text


def test_length_counts_encoded_bytes() -> None:
    assert encoded_length("ã" * 40, UTF8) == 80
    assert encoded_length("ã" * 40, LATIN1) == 40


def test_check_length_names_field_length_and_fix() -> None:
    with pytest.raises(ConversionError) as caught:
        check_length("Series Description", "ã" * 40, 64, UTF8, "Shorten it.", vr="LO")

    assert str(caught.value) == (
        "Series Description is 80 bytes long in ISO_IR 192, over the 64-byte "
        "limit of the DICOM LO type. Shorten it."
    )


def test_check_length_accepts_the_limit() -> None:
    check_length("Series Description", "ã" * 64, 64, LATIN1, "", vr="LO")


@given(
    st.text(),
    st.integers(min_value=0, max_value=80),
    st.sampled_from(list(CharacterSet)),
)
def test_truncation_respects_bytes_and_boundaries(
    text: str, limit: int, charset: CharacterSet
) -> None:
    prepared = transliterate_latin1(text) if charset is LATIN1 else text
    prepared = prepared.encode("utf-8", "ignore").decode("utf-8")

    cut = truncate_encoded(prepared, limit, charset)

    assert encoded_length(cut, charset) <= limit
    assert prepared.startswith(cut)


def test_truncation_never_splits_a_character() -> None:
    assert truncate_encoded("aã", 2, UTF8) == "a"


@given(st.lists(st.text(), max_size=4))
def test_person_name_has_no_separators_inside_components(parts: list[str]) -> None:
    name = person_name(parts, UTF8)

    assert "=" not in name
    assert "\\" not in name
    assert name.count("^") <= max(0, len(parts) - 1)
    assert not name.endswith("^")
    assert all(ord(character) >= 0x20 for character in name)


def test_person_name_drops_trailing_empty_components() -> None:
    assert person_name(["Souza", "Ana", "", ""], UTF8) == "Souza^Ana"
    assert person_name(["Souza", "", "Maria"], UTF8) == "Souza^^Maria"
    assert person_name(["", ""], UTF8) == ""


def test_clean_line_removes_controls() -> None:
    assert clean_line(" a\tb\r\n c\x85d\x00 ") == "a b c d"


def test_identifier_is_not_transliterated() -> None:
    with pytest.raises(ConversionError, match="ISO_IR 100 cannot encode"):
        check_identifier("Patient ID", "12€", 64, LATIN1, "Fix it.", vr="LO")


@pytest.mark.parametrize("value", ["12\\34", "12\n34", "12\x1b34"])
def test_identifier_rejects_backslash_and_controls(value: str) -> None:
    with pytest.raises(ConversionError, match="control character or a backslash"):
        check_identifier("Patient ID", value, 64, UTF8, "Fix it.", vr="LO")


def test_identifier_is_trimmed() -> None:
    assert check_identifier("Patient ID", " 123 ", 64, UTF8, "", vr="LO") == "123"
