"""Settings of each server kind: DICOM storage, DICOM worklist and DICOMweb.

The objects are frozen and validate every value when made, so an instance in
hand is always valid; ``dataclasses.replace`` validates the changed copy again.
Each has ``to_json`` and ``from_json``; ``from_json`` rejects unknown members
and fills missing optional ones with their defaults.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any, ClassVar

from eyer_desktop.core.errors import ValidationError
from eyer_desktop.core.fields import (
    JsonMembers,
    check_file_exists,
    coerce_enum,
    is_control_character,
    path_to_json,
    require_bool,
    require_text,
    validate_ae_title,
    validate_base_url,
    validate_host,
    validate_modality,
    validate_optional_path,
    validate_port,
    validate_timeout,
)

DEFAULT_AE_TITLE = "EYERDESKTOP"


class ServerKind(StrEnum):
    DICOM_STORAGE = "dicom-storage"
    DICOM_WORKLIST = "dicom-worklist"
    DICOMWEB = "dicomweb"


class PatientNameOrder(StrEnum):
    """The order of the name parts a server expects in Patient's Name (PN)."""

    FAMILY_GIVEN = "family^given"
    GIVEN_FAMILY = "given^family"


class SopClassFallback(StrEnum):
    """The SOP class to send as when an archive rejects Ophthalmic Photography."""

    NONE = "none"
    VL_PHOTOGRAPHIC = "vl-photographic"
    SECONDARY_CAPTURE = "secondary-capture"


class WebAuth(StrEnum):
    """Authentication scheme of a DICOMweb server."""

    NONE = "none"
    BASIC = "basic"
    BEARER = "bearer"


@dataclass(frozen=True, kw_only=True)
class DicomTimeouts:
    """Timeouts of a DICOM association, in seconds."""

    connect: float = 5.0
    """Opening the TCP connection."""
    acse: float = 30.0
    """Waiting for the association to be accepted or released."""
    dimse: float = 30.0
    """Waiting for the response to a C-ECHO, C-STORE or C-FIND request."""
    network: float = 60.0
    """An idle connection, before it is closed."""

    LIMITS: ClassVar[dict[str, tuple[str, float, float]]] = {
        "connect": ("Connection timeout", 0.5, 120.0),
        "acse": ("ACSE timeout", 1.0, 600.0),
        "dimse": ("DIMSE timeout", 1.0, 3600.0),
        "network": ("Network timeout", 1.0, 3600.0),
    }

    def __post_init__(self) -> None:
        for name, (label, low, high) in self.LIMITS.items():
            checked = validate_timeout(getattr(self, name), label, low, high)
            object.__setattr__(self, name, checked)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: object) -> DicomTimeouts:
        members = JsonMembers(data, "Timeouts")
        defaults = cls()
        values = {
            name: members.take(name, getattr(defaults, name)) for name in cls.LIMITS
        }
        members.finish()
        return cls(**values)


@dataclass(frozen=True, kw_only=True)
class TlsSettings:
    """DICOM TLS of one server.

    Attributes:
        enabled: Connect with TLS.
        ca_file: PEM file of the certificate authorities to trust, or None for
            the system's.
        cert_file: PEM client certificate, for servers that require one.
        key_file: PEM private key of the client certificate, or None when
            ``cert_file`` contains it.
        verify: Check the server's certificate and host name.
    """

    enabled: bool = False
    ca_file: Path | None = None
    cert_file: Path | None = None
    key_file: Path | None = None
    verify: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "enabled", require_bool(self.enabled, "TLS"))
        object.__setattr__(
            self, "verify", require_bool(self.verify, "TLS verification")
        )
        for name, label in (
            ("ca_file", "CA file"),
            ("cert_file", "Client certificate"),
            ("key_file", "Client key"),
        ):
            object.__setattr__(
                self, name, validate_optional_path(getattr(self, name), label)
            )

        if self.key_file is not None and self.cert_file is None:
            raise ValidationError(
                "Client key",
                str(self.key_file),
                "is set without a client certificate",
                "Set the client certificate too, or clear the key",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "enabled": self.enabled,
            "ca_file": path_to_json(self.ca_file),
            "cert_file": path_to_json(self.cert_file),
            "key_file": path_to_json(self.key_file),
            "verify": self.verify,
        }

    @classmethod
    def from_json(cls, data: object) -> TlsSettings:
        members = JsonMembers(data, "TLS")
        settings = cls(
            enabled=members.take("enabled", False),
            ca_file=members.take("ca_file", None),
            cert_file=members.take("cert_file", None),
            key_file=members.take("key_file", None),
            verify=members.take("verify", True),
        )
        members.finish()
        return settings


@dataclass(frozen=True, kw_only=True)
class DicomSettings:
    """Connection settings of a DICOM server.

    Attributes:
        calling_ae: This application's AE title ("AE Title" on the device).
        called_ae: The server's AE title ("AET" on the device).
        host: IP address or host name of the server.
        port: TCP port of the server.
        patient_name_order: The order of name parts the server uses.
        timeouts: Association timeouts.
        tls: DICOM TLS settings.
    """

    KIND: ClassVar[ServerKind]

    calling_ae: str = DEFAULT_AE_TITLE
    called_ae: str
    host: str
    port: int
    patient_name_order: PatientNameOrder = PatientNameOrder.FAMILY_GIVEN
    timeouts: DicomTimeouts = field(default_factory=DicomTimeouts)
    tls: TlsSettings = field(default_factory=TlsSettings)

    def __post_init__(self) -> None:
        set_value = object.__setattr__
        set_value(self, "calling_ae", validate_ae_title(self.calling_ae, "AE Title"))
        set_value(self, "called_ae", validate_ae_title(self.called_ae, "AET"))
        set_value(self, "host", validate_host(self.host))
        set_value(self, "port", validate_port(self.port))
        order = coerce_enum(
            PatientNameOrder, self.patient_name_order, "Patient name order"
        )
        set_value(self, "patient_name_order", order)

        if not isinstance(self.timeouts, DicomTimeouts):
            raise TypeError(f"timeouts must be DicomTimeouts, not {self.timeouts!r}")
        if not isinstance(self.tls, TlsSettings):
            raise TypeError(f"tls must be TlsSettings, not {self.tls!r}")

    def to_json(self) -> dict[str, Any]:
        return {
            "calling_ae": self.calling_ae,
            "called_ae": self.called_ae,
            "host": self.host,
            "port": self.port,
            "patient_name_order": self.patient_name_order.value,
            "timeouts": self.timeouts.to_json(),
            "tls": self.tls.to_json(),
        }

    @staticmethod
    def _common_from_json(members: JsonMembers) -> dict[str, Any]:
        return {
            "calling_ae": members.take("calling_ae", DEFAULT_AE_TITLE),
            "called_ae": members.take("called_ae"),
            "host": members.take("host"),
            "port": members.take("port"),
            "patient_name_order": members.take(
                "patient_name_order", PatientNameOrder.FAMILY_GIVEN
            ),
            "timeouts": DicomTimeouts.from_json(members.take("timeouts", {})),
            "tls": TlsSettings.from_json(members.take("tls", {})),
        }


@dataclass(frozen=True, kw_only=True)
class DicomStorageSettings(DicomSettings):
    """A DICOM archive that receives exams by C-STORE.

    Attributes:
        sop_class_fallback: The SOP class to send as when the archive rejects
            Ophthalmic Photography.
    """

    KIND: ClassVar[ServerKind] = ServerKind.DICOM_STORAGE

    sop_class_fallback: SopClassFallback = SopClassFallback.NONE

    def __post_init__(self) -> None:
        super().__post_init__()
        fallback = coerce_enum(
            SopClassFallback, self.sop_class_fallback, "SOP class fallback"
        )
        object.__setattr__(self, "sop_class_fallback", fallback)

    def to_json(self) -> dict[str, Any]:
        return super().to_json() | {"sop_class_fallback": self.sop_class_fallback.value}

    @classmethod
    def from_json(cls, data: object) -> DicomStorageSettings:
        members = JsonMembers(data, "Settings")
        values = cls._common_from_json(members)
        fallback = members.take("sop_class_fallback", SopClassFallback.NONE)
        members.finish()
        return cls(**values, sop_class_fallback=fallback)


@dataclass(frozen=True, kw_only=True)
class DicomWorklistSettings(DicomSettings):
    """A DICOM modality worklist server, queried by C-FIND.

    Attributes:
        modality: The modality filter of the query, or "" for none.
    """

    KIND: ClassVar[ServerKind] = ServerKind.DICOM_WORKLIST

    modality: str = "OP"

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(self, "modality", validate_modality(self.modality))

    def to_json(self) -> dict[str, Any]:
        return super().to_json() | {"modality": self.modality}

    @classmethod
    def from_json(cls, data: object) -> DicomWorklistSettings:
        members = JsonMembers(data, "Settings")
        values = cls._common_from_json(members)
        modality = members.take("modality", "OP")
        members.finish()
        return cls(**values, modality=modality)


@dataclass(frozen=True, kw_only=True)
class DicomWebSettings:
    """A DICOMweb server that receives exams by STOW-RS.

    The password (basic) or token (bearer) is kept in the OS keyring under the
    server's key, never here.

    Attributes:
        base_url: The service root, e.g. ``https://cloud.example.com/dicom-web``,
            or None while the server is not configured.
        auth: How requests are authenticated.
        username: The user name of basic authentication.
        verify_tls: Check the server's HTTPS certificate and host name.
        ca_file: PEM file of the certificate authorities to trust, or None for
            the system's.
        timeout: Seconds to wait for the connection and for each response.
    """

    KIND: ClassVar[ServerKind] = ServerKind.DICOMWEB
    TIMEOUT_LIMITS: ClassVar[tuple[float, float]] = (1.0, 3600.0)

    base_url: str | None = None
    auth: WebAuth = WebAuth.NONE
    username: str = ""
    verify_tls: bool = True
    ca_file: Path | None = None
    timeout: float = 30.0

    def __post_init__(self) -> None:
        set_value = object.__setattr__
        if self.base_url is not None:
            set_value(self, "base_url", validate_base_url(self.base_url))
        set_value(self, "auth", coerce_enum(WebAuth, self.auth, "Authentication"))
        set_value(self, "username", _validate_username(self.username))
        set_value(
            self, "verify_tls", require_bool(self.verify_tls, "HTTPS verification")
        )
        set_value(self, "ca_file", validate_optional_path(self.ca_file, "CA file"))
        low, high = self.TIMEOUT_LIMITS
        set_value(self, "timeout", validate_timeout(self.timeout, "Timeout", low, high))

        if self.auth is WebAuth.BASIC and not self.username:
            raise ValidationError(
                "Username",
                None,
                "is missing for basic authentication",
                "Give the user name, or choose another authentication",
            )

    def to_json(self) -> dict[str, Any]:
        return {
            "base_url": self.base_url,
            "auth": self.auth.value,
            "username": self.username,
            "verify_tls": self.verify_tls,
            "ca_file": path_to_json(self.ca_file),
            "timeout": self.timeout,
        }

    @classmethod
    def from_json(cls, data: object) -> DicomWebSettings:
        members = JsonMembers(data, "Settings")
        settings = cls(
            base_url=members.take("base_url", None),
            auth=members.take("auth", WebAuth.NONE),
            username=members.take("username", ""),
            verify_tls=members.take("verify_tls", True),
            ca_file=members.take("ca_file", None),
            timeout=members.take("timeout", 30.0),
        )
        members.finish()
        return settings


def _validate_username(value: object) -> str:
    username = require_text(value, "Username").strip()
    if ":" in username or any(is_control_character(char) for char in username):
        raise ValidationError(
            "Username",
            value,
            "contains a colon or a control character",
            "Basic authentication cannot carry these; use another user name",
        )
    return username


ServerSettings = DicomStorageSettings | DicomWorklistSettings | DicomWebSettings

SETTINGS_CLASSES: dict[ServerKind, type[ServerSettings]] = {
    ServerKind.DICOM_STORAGE: DicomStorageSettings,
    ServerKind.DICOM_WORKLIST: DicomWorklistSettings,
    ServerKind.DICOMWEB: DicomWebSettings,
}


def check_settings_files(settings: ServerSettings) -> None:
    """Raise ValidationError when a certificate or key file of the settings is missing.

    Call it when the user enters or changes the settings. Loading a saved
    server list does not check the files.
    """
    if isinstance(settings, DicomWebSettings):
        check_file_exists(settings.ca_file, "CA file")
        return
    tls = settings.tls
    check_file_exists(tls.ca_file, "CA file")
    check_file_exists(tls.cert_file, "Client certificate")
    check_file_exists(tls.key_file, "Client key")
