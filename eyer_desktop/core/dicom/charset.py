"""Character sets, transliteration to Latin-1 and encoded-length checks.

DICOM states most string limits in characters, but dciodvfy counts encoded
bytes, so every limit here is checked on the bytes of the chosen character
set. Under ISO_IR 100 a character and a byte are the same; under ISO_IR 192
(UTF-8) a Portuguese letter such as "ã" takes two bytes.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from eyer_desktop.core.errors import ConversionError


class CharacterSet(StrEnum):
    """Specific Character Set (0008,0005) values the converter writes."""

    UTF8 = "ISO_IR 192"
    LATIN1 = "ISO_IR 100"

    @property
    def codec(self) -> str:
        """Python codec of the character set."""
        return "utf-8" if self is CharacterSet.UTF8 else "latin-1"


# Replacements for characters that ISO 8859-1 lacks but that text pasted from
# word processors and messaging apps often contains.
_LATIN1_REPLACEMENTS = {
    "\u2018": "'",  # left single quotation mark
    "\u2019": "'",  # right single quotation mark
    "\u201a": "'",  # single low-9 quotation mark
    "\u201b": "'",  # single high-reversed-9 quotation mark
    "\u2032": "'",  # prime
    "\u201c": '"',  # left double quotation mark
    "\u201d": '"',  # right double quotation mark
    "\u201e": '"',  # double low-9 quotation mark
    "\u201f": '"',  # double high-reversed-9 quotation mark
    "\u2033": '"',  # double prime
    "\u2039": "<",  # single left-pointing angle quotation mark
    "\u203a": ">",  # single right-pointing angle quotation mark
    "\u2010": "-",  # hyphen
    "\u2011": "-",  # non-breaking hyphen
    "\u2012": "-",  # figure dash
    "\u2013": "-",  # en dash
    "\u2014": "-",  # em dash
    "\u2015": "-",  # horizontal bar
    "\u2212": "-",  # minus sign
    "\u2026": "...",  # horizontal ellipsis
    "\u2022": "*",  # bullet
    "\u20ac": "EUR",  # euro sign
    "\u2122": "TM",  # trade mark sign
    "\u0152": "OE",
    "\u0153": "oe",
    "\u0141": "L",
    "\u0142": "l",
    "\u0110": "D",
    "\u0111": "d",
    "\u0131": "i",
}
_SPACES = {chr(code) for code in range(0x2000, 0x200B)} | {"\u202f", "\u205f", "\u3000"}
_INVISIBLE = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff"}


def transliterate_latin1(text: str) -> str:
    """Replace every character ISO 8859-1 lacks with a close Latin-1 form.

    Typographic quotes, dashes, the ellipsis and the euro sign get fixed
    replacements; other letters lose their diacritics ("ő" to "o"); anything
    left becomes "?".
    """
    if all(ord(character) < 0x100 for character in text):
        return text
    return "".join(_latin1_character(character) for character in text)


def _latin1_character(character: str) -> str:
    if ord(character) < 0x100:
        return character
    if character in _LATIN1_REPLACEMENTS:
        return _LATIN1_REPLACEMENTS[character]
    if character in _SPACES:
        return " "
    if character in _INVISIBLE:
        return ""
    decomposed = unicodedata.normalize("NFKD", character)
    kept = "".join(
        part
        for part in decomposed
        if ord(part) < 0x100 and not unicodedata.combining(part)
    )
    return kept or "?"


def remove_control_characters(text: str) -> str:
    """Replace C0 and C1 control characters with spaces and drop lone
    surrogates, which no character set can encode.
    """
    return "".join(
        " " if _is_control(character) else character
        for character in text
        if not 0xD800 <= ord(character) <= 0xDFFF
    )


def _is_control(character: str) -> bool:
    code = ord(character)
    return code < 0x20 or 0x7F <= code <= 0x9F


def clean_line(text: str) -> str:
    """Return single-line text without control characters, with runs of
    whitespace collapsed and the ends trimmed.
    """
    return " ".join(remove_control_characters(text).split())


def has_control_characters(text: str) -> bool:
    """Return True when the text contains a C0 or C1 control character."""
    return any(_is_control(character) for character in text)


def encoded_length(text: str, charset: CharacterSet) -> int:
    """Return the length of the text in bytes once encoded."""
    return len(text.encode(charset.codec))


def prepare_text(text: str, charset: CharacterSet) -> str:
    """Return the text made encodable in the character set (Latin-1 gets
    transliterated).
    """
    if charset is CharacterSet.LATIN1:
        return transliterate_latin1(text)
    return text


def truncate_encoded(text: str, max_bytes: int, charset: CharacterSet) -> str:
    """Cut the text to at most ``max_bytes`` encoded bytes, at a character
    boundary, and trim the trailing space the cut may leave.
    """
    if encoded_length(text, charset) <= max_bytes:
        return text
    encoded = text.encode(charset.codec)[:max_bytes]
    return encoded.decode(charset.codec, errors="ignore").rstrip()


def check_length(
    field: str,
    text: str,
    max_bytes: int,
    charset: CharacterSet,
    fix: str,
    *,
    vr: str,
) -> None:
    """Raise ConversionError when the encoded text is longer than allowed.

    The message names the field, the length and the fix, never the value,
    so it can be logged even when the value is patient data.
    """
    length = encoded_length(text, charset)
    if length > max_bytes:
        raise ConversionError(
            f"{field} is {length} bytes long in {charset.value}, over the "
            f"{max_bytes}-byte limit of the DICOM {vr} type. {fix}"
        )


def check_identifier(
    field: str, text: str, max_bytes: int, charset: CharacterSet, fix: str, *, vr: str
) -> str:
    """Validate an identifier that must not be altered, and return it trimmed.

    Identifiers (patient ID, accession number ...) are never transliterated or
    cleaned silently: a control character, a backslash or a character the
    character set lacks raises ConversionError.
    """
    value = text.strip()
    if has_control_characters(value) or "\\" in value:
        raise ConversionError(
            f"{field} contains a control character or a backslash, which DICOM "
            f"does not allow in it. {fix}"
        )
    try:
        value.encode(charset.codec)
    except UnicodeEncodeError as err:
        raise ConversionError(
            f"{field} contains characters that {charset.value} cannot encode. "
            f"Choose the ISO_IR 192 (UTF-8) character set, or correct the value."
        ) from err
    check_length(field, value, max_bytes, charset, fix, vr=vr)
    return value


# Characters with a meaning inside a PN value: component, group and value
# separators.
_PERSON_NAME_DELIMITERS = str.maketrans({"^": " ", "=": " ", "\\": " "})


def person_name(components: list[str], charset: CharacterSet) -> str:
    """Return a PN value from name components in DICOM order.

    Separator characters and control characters inside a component become
    spaces, whitespace is collapsed, and trailing empty components are
    dropped, so ``["Souza", "Ana", ""]`` gives ``"Souza^Ana"``.
    """
    cleaned = [
        clean_line(prepare_text(component, charset).translate(_PERSON_NAME_DELIMITERS))
        for component in components
    ]
    while cleaned and not cleaned[-1]:
        cleaned.pop()
    return "^".join(cleaned)
