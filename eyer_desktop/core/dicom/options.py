"""Settings that shape every converted file."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from eyer_desktop.core.dicom.charset import CharacterSet, has_control_characters
from eyer_desktop.core.dicom.pixels import DEFAULT_MAX_PIXELS
from eyer_desktop.core.errors import ValidationError

AE_TITLE_MAX_LENGTH = 16


class NameOrder(StrEnum):
    """Order of the components written to Patient's Name."""

    FAMILY_GIVEN = "family^given"
    """DICOM's own order: family name, given name, middle name."""
    GIVEN_FAMILY = "given^family"
    """Given name first, for archives that show the components as written."""


@dataclass(frozen=True)
class ConversionOptions:
    """Settings of the conversion, validated when created.

    String values are accepted for the enum fields and converted; an invalid
    value raises ValidationError naming the setting.

    Attributes:
        dicom_prefix: Text put before the clinic document number to form
            Patient ID (the device's "DICOM prefix").
        specific_character_set: ISO_IR 192 (UTF-8, the default) or ISO_IR 100
            (Latin-1, with characters it lacks transliterated).
        institution_name: Institution Name written when the exam carries no
            clinic name.
        name_order: Order of the Patient's Name components.
        station_name: Station Name (0008,1010), at most 16 bytes; empty to omit.
        source_ae_title: Source Application Entity Title written in the file
            meta information; empty to omit.
        max_pixels: Largest image, in pixels, that is accepted. Larger frame
            headers are rejected before decoding as decompression bombs.
    """

    dicom_prefix: str = ""
    specific_character_set: CharacterSet = CharacterSet.UTF8
    institution_name: str = ""
    name_order: NameOrder = NameOrder.FAMILY_GIVEN
    station_name: str = ""
    source_ae_title: str = ""
    max_pixels: int = DEFAULT_MAX_PIXELS

    def __post_init__(self) -> None:
        object.__setattr__(
            self,
            "specific_character_set",
            _coerce_character_set(self.specific_character_set),
        )
        object.__setattr__(self, "name_order", _coerce_name_order(self.name_order))
        _check_free_of_controls("DICOM prefix", self.dicom_prefix)
        _check_free_of_controls("Station name", self.station_name)
        _check_ae_title(self.source_ae_title)
        if self.max_pixels <= 0:
            raise ValidationError(
                "Maximum pixels",
                self.max_pixels,
                "must be a positive number of pixels",
                "Use a limit such as 80000000.",
            )


def _coerce_character_set(value: str) -> CharacterSet:
    try:
        return CharacterSet(value)
    except ValueError as err:
        raise ValidationError(
            "Specific character set",
            value,
            "is not supported",
            "Use ISO_IR 192 (UTF-8) or ISO_IR 100 (Latin-1).",
        ) from err


def _coerce_name_order(value: str) -> NameOrder:
    try:
        return NameOrder(value)
    except ValueError as err:
        raise ValidationError(
            "Patient name order",
            value,
            "is not supported",
            "Use family^given or given^family.",
        ) from err


def _check_free_of_controls(field: str, value: str) -> None:
    if has_control_characters(value) or "\\" in value:
        raise ValidationError(
            field,
            value,
            "contains a control character or a backslash",
            "Remove it; DICOM does not allow them in this value.",
        )


def _check_ae_title(value: str) -> None:
    if not value:
        return
    if (
        len(value) > AE_TITLE_MAX_LENGTH
        or not value.isascii()
        or "\\" in value
        or has_control_characters(value)
        or not value.strip()
    ):
        raise ValidationError(
            "Source AE title",
            value,
            "is not a valid AE title",
            "Use 1 to 16 ASCII characters without a backslash.",
        )
