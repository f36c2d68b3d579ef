"""Application settings: DICOM prefix, clinic and device data, character set.

Each setting has a stable name for the command line
(``eyer-desktop settings set dicom_prefix phelcom_``), listed in
:data:`SETTING_NAMES`. Values are validated when an :class:`AppSettings` is
made, also across settings: with ``ISO_IR 100`` (Latin-1) every text setting
must be encodable in Latin-1, and byte lengths are counted in the character
set's encoding. The file is ``settings.json`` in the configuration folder,
read and written through :mod:`eyer_desktop.core.jsonstore`. A setting missing
from the file takes its default, and an unknown one makes the file invalid.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.fields import (
    JsonMembers,
    coerce_enum,
    is_control_character,
    require_text,
    validate_ae_title,
)
from eyer_desktop.core.jsonstore import (
    damaged_file_error,
    read_json_document,
    write_json_atomic,
)
from eyer_desktop.core.server_settings import DEFAULT_AE_TITLE

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DOCUMENT_KIND = "settings"

# Maximum length of a DICOM LO (Long String) value, in bytes of its encoding.
LO_MAX_BYTES = 64

# Room kept in PatientID for the clinic document after the prefix. Brazilian
# CNS numbers have 15 digits and formatted CPF numbers 14 characters. That most
# medical record numbers fit in 20 characters is an estimate.
TYPICAL_DOCUMENT_BYTES = 20
MAX_PREFIX_BYTES = LO_MAX_BYTES - TYPICAL_DOCUMENT_BYTES


class CharacterSet(StrEnum):
    """The Specific Character Set (0008,0005) written in DICOM files."""

    UTF8 = "ISO_IR 192"
    """Unicode in UTF-8, for archives that support it."""
    LATIN1 = "ISO_IR 100"
    """Latin alphabet No. 1, for older archives."""

    @property
    def codec(self) -> str:
        """The Python codec of this character set."""
        return "utf-8" if self is CharacterSet.UTF8 else "latin-1"


LABELS: dict[str, str] = {
    "dicom_prefix": "DICOM prefix",
    "institution_name": "Institution name",
    "device_serial_number": "Device serial number",
    "software_version": "Software version",
    "specific_character_set": "Specific character set",
    "default_ae_title": "Default AE title",
}

DESCRIPTIONS: dict[str, str] = {
    "dicom_prefix": (
        "Text put before the clinic document in PatientID, e.g. phelcom_ "
        f"(at most {MAX_PREFIX_BYTES} bytes)"
    ),
    "institution_name": "Clinic name written as InstitutionName (at most 64 bytes)",
    "device_serial_number": "Camera serial number written as DeviceSerialNumber",
    "software_version": "Camera software version written in SoftwareVersions",
    "specific_character_set": (
        "ISO_IR 192 (UTF-8, the default) or ISO_IR 100 (Latin-1, older archives)"
    ),
    "default_ae_title": "AE title this application uses for new DICOM servers",
}


def _label(name: str) -> str:
    return f"{LABELS[name]} ({name})"


@dataclass(frozen=True, kw_only=True)
class AppSettings:
    """The application settings, validated.

    Attributes:
        dicom_prefix: Put before the clinic document to make the PatientID.
        institution_name: The clinic name, for InstitutionName.
        device_serial_number: The camera's serial number, for DeviceSerialNumber.
        software_version: The camera's software version, for SoftwareVersions.
        specific_character_set: The character set of the DICOM files.
        default_ae_title: The calling AE title proposed for new DICOM servers.
    """

    dicom_prefix: str = ""
    institution_name: str = ""
    device_serial_number: str = ""
    software_version: str = ""
    specific_character_set: CharacterSet = CharacterSet.UTF8
    default_ae_title: str = DEFAULT_AE_TITLE

    def __post_init__(self) -> None:
        charset = coerce_enum(
            CharacterSet,
            self.specific_character_set,
            _label("specific_character_set"),
        )
        object.__setattr__(self, "specific_character_set", charset)

        limits = {
            "dicom_prefix": MAX_PREFIX_BYTES,
            "institution_name": LO_MAX_BYTES,
            "device_serial_number": LO_MAX_BYTES,
            "software_version": LO_MAX_BYTES,
        }
        for name, max_bytes in limits.items():
            text = validate_long_string(getattr(self, name), name, max_bytes, charset)
            object.__setattr__(self, name, text)

        title = validate_ae_title(self.default_ae_title, _label("default_ae_title"))
        object.__setattr__(self, "default_ae_title", title)

    def get(self, name: str) -> str:
        """Return the value of the setting ``name`` as text.

        Raises:
            ValidationError: ``name`` is not a setting.
        """
        value = getattr(self, check_setting_name(name))
        return str(value.value if isinstance(value, StrEnum) else value)

    def with_value(self, name: str, value: str) -> AppSettings:
        """Return a copy with the setting ``name`` changed to ``value``.

        Raises:
            ValidationError: ``name`` is not a setting, or the value is invalid
                for it or, with the other settings, for the character set.
        """
        changes: dict[str, Any] = {check_setting_name(name): value}
        return dataclasses.replace(self, **changes)

    def to_json(self) -> dict[str, Any]:
        values = {name: self.get(name) for name in SETTING_NAMES}
        return {"schema_version": SCHEMA_VERSION} | values

    @classmethod
    def from_json(cls, document: object) -> AppSettings:
        """Build the settings from a parsed settings document.

        Raises:
            ValidationError: A member is unknown or invalid.
        """
        members = JsonMembers(document, "Settings")
        members.take("schema_version")
        defaults = cls()
        values = {
            name: members.take(name, getattr(defaults, name)) for name in SETTING_NAMES
        }
        members.finish()
        return cls(**values)

    @classmethod
    def load(cls, path: Path) -> AppSettings:
        """Read the settings from ``path``, or return the defaults when it is missing.

        Raises:
            ConfigError: The file cannot be read, or it is damaged or invalid;
                then it has been moved aside and the message names both paths.
        """
        document = read_json_document(path, DOCUMENT_KIND, SCHEMA_VERSION)
        if document is None:
            logger.info("No settings file at %s; using the defaults", path)
            return cls()

        try:
            settings = cls.from_json(document)
        except ValidationError as err:
            raise damaged_file_error(path, DOCUMENT_KIND, str(err)) from err

        logger.info("Loaded settings from %s", path)
        return settings

    def save(self, path: Path) -> None:
        """Write the settings to ``path`` atomically.

        Raises:
            ConfigError: The file cannot be written.
        """
        write_json_atomic(path, self.to_json())
        logger.info("Saved settings to %s", path)


SETTING_NAMES: tuple[str, ...] = tuple(
    field.name for field in dataclasses.fields(AppSettings)
)


def check_setting_name(name: str) -> str:
    """Return ``name`` when it names a setting.

    Raises:
        ValidationError: It does not; the message lists the settings.
    """
    if name not in SETTING_NAMES:
        raise ValidationError(
            "Setting",
            name,
            "is not a setting",
            f"Use one of: {', '.join(SETTING_NAMES)}",
        )
    return name


def validate_long_string(
    value: object, name: str, max_bytes: int, charset: CharacterSet
) -> str:
    """Return a DICOM LO value without surrounding spaces.

    The value has no backslash (it separates DICOM values), no control
    characters, only characters of ``charset``, and at most ``max_bytes`` bytes
    in its encoding.

    Raises:
        ValidationError: The value breaks these rules; the field names setting
            ``name``.
    """
    label = _label(name)
    text = require_text(value, label).strip(" ")

    if "\\" in text:
        raise ValidationError(
            label, value, "contains a backslash", "Remove the backslash"
        )
    if any(is_control_character(char) for char in text):
        raise ValidationError(
            label, value, "contains a control character", "Keep the value on one line"
        )

    try:
        size = len(text.encode(charset.codec))
    except UnicodeEncodeError as err:
        bad = text[err.start : err.end]
        raise ValidationError(
            label,
            value,
            f"contains {bad!r}, which {charset.value} cannot encode",
            f"Remove it, or set specific_character_set to {CharacterSet.UTF8.value}",
        ) from err
    if size > max_bytes:
        raise ValidationError(
            label,
            value,
            f"has {size} bytes in {charset.value}, more than {max_bytes}",
            "Shorten it",
        )
    return text
