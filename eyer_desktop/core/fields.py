"""Validation of the values typed into server and settings forms or read from files.

Each ``validate_*`` function takes the raw value (text from a form or the
command line, or a JSON value), returns it in normal form, and raises
:class:`ValidationError` naming the field as the user sees it and the fix.
Normal forms are stable: validating a returned value returns it unchanged.
"""

from __future__ import annotations

import ipaddress
import math
import re
import unicodedata
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

from eyer_desktop.core.errors import ValidationError

MAX_NAME_LENGTH = 64
MAX_AE_TITLE_LENGTH = 16
MAX_MODALITY_LENGTH = 16
MAX_HOST_NAME_LENGTH = 253
MAX_LABEL_LENGTH = 63

_HOST_LABEL = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")
_MODALITY = re.compile(r"[A-Z0-9 _]*")

E = TypeVar("E", bound=StrEnum)


def coerce_enum(enum_type: type[E], value: object, field_name: str) -> E:
    """Return the member of ``enum_type`` whose value is ``value``, ignoring case.

    Raises:
        ValidationError: ``value`` names no member.
    """
    if isinstance(value, enum_type):
        return value

    if isinstance(value, str):
        text = value.strip().lower()
        for member in enum_type:
            if member.value.lower() == text:
                return member

    choices = ", ".join(member.value for member in enum_type)
    raise ValidationError(
        field_name, value, "is not a valid choice", f"Use one of: {choices}"
    )


def require_text(value: object, field_name: str) -> str:
    """Return ``value`` when it is a string.

    Raises:
        ValidationError: ``value`` is not a string.
    """
    if not isinstance(value, str):
        raise ValidationError(field_name, value, "is not text", "Give a text value")
    return value


def validate_ae_title(value: object, field_name: str = "AE Title") -> str:
    """Return a DICOM AE title without its surrounding spaces.

    An AE title has 1 to 16 characters of the default character repertoire
    (printable ASCII), no backslash, and is not only spaces (PS3.5 6.2).

    Raises:
        ValidationError: The value breaks one of these rules.
    """
    title = require_text(value, field_name).strip(" ")
    fix = "Use 1 to 16 printable ASCII characters without backslash, e.g. EYERDESKTOP"

    if not title:
        raise ValidationError(field_name, value, "is empty or only spaces", fix)
    if len(title) > MAX_AE_TITLE_LENGTH:
        problem = f"has {len(title)} characters, more than 16"
        raise ValidationError(field_name, value, problem, fix)
    for char in title:
        if char == "\\":
            raise ValidationError(field_name, value, "contains a backslash", fix)
        if not " " <= char <= "~":
            problem = f"contains {char!r}, which is not printable ASCII"
            raise ValidationError(field_name, value, problem, fix)
    return title


def validate_host(value: object, field_name: str = "Host") -> str:
    """Return an IPv4 address, IPv6 address or host name without surrounding spaces.

    An IPv6 address may be given in brackets, which are removed. A host name is
    made of RFC 1123 labels: letters, digits and inner hyphens, 1 to 63
    characters each, at most 253 in all, with an optional final dot. Its last
    label must not be all digits, so that a mistyped address such as
    ``10.0.0`` is rejected instead of being looked up as a name.

    Raises:
        ValidationError: The value is none of these.
    """
    host = require_text(value, field_name).strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]

    if _is_ip_address(host) or _is_host_name(host):
        return host

    raise ValidationError(
        field_name,
        value,
        "is not a valid IP address or host name",
        "Give an IPv4 address (192.168.0.10), an IPv6 address (fd00::10) or a "
        "host name (pacs.clinic.local)",
    )


def _is_ip_address(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _is_host_name(host: str) -> bool:
    name = host.removesuffix(".")
    if not name or len(name) > MAX_HOST_NAME_LENGTH:
        return False

    labels = name.split(".")
    if labels[-1].isdigit():
        return False
    return all(
        len(label) <= MAX_LABEL_LENGTH and _HOST_LABEL.fullmatch(label) is not None
        for label in labels
    )


def validate_port(value: object, field_name: str = "Port") -> int:
    """Return a TCP port from 1 to 65535, given as an integer or decimal text.

    Raises:
        ValidationError: The value is not such a number.
    """
    port: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        port = value
    elif isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        port = int(value.strip())

    if port is None or not 1 <= port <= 65535:
        raise ValidationError(
            field_name,
            value,
            "is not a port number from 1 to 65535",
            "Give the port the server listens on, e.g. 104 or 11112",
        )
    return port


def validate_modality(value: object, field_name: str = "Modality") -> str:
    """Return a worklist modality filter: a DICOM CS value, or "" for no filter.

    A CS value has at most 16 characters among upper-case A-Z, digits, space
    and underscore. Surrounding spaces are removed, as CS ignores them.

    Raises:
        ValidationError: The value breaks these rules.
    """
    modality = require_text(value, field_name).strip(" ")

    if len(modality) > MAX_MODALITY_LENGTH:
        problem = f"has {len(modality)} characters, more than 16"
        raise ValidationError(field_name, value, problem, "Use a modality such as OP")
    if not _MODALITY.fullmatch(modality):
        fix = "Use upper-case letters A-Z, digits, spaces or _, e.g. OP"
        if _MODALITY.fullmatch(modality.upper()):
            fix = f"Use upper case: {modality.upper()}"
        raise ValidationError(
            field_name, value, "is not a valid DICOM code string", fix
        )
    return modality


def validate_timeout(
    value: object, field_name: str, minimum: float, maximum: float
) -> float:
    """Return a timeout in seconds from ``minimum`` to ``maximum``.

    Raises:
        ValidationError: The value is not a number in that range.
    """
    seconds: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value)
    elif isinstance(value, str):
        try:
            seconds = float(value.strip())
        except ValueError:
            seconds = None

    if (
        seconds is None
        or not math.isfinite(seconds)
        or not minimum <= seconds <= maximum
    ):
        raise ValidationError(
            field_name,
            value,
            f"is not a number of seconds from {minimum:g} to {maximum:g}",
            f"Give a value from {minimum:g} to {maximum:g}",
        )
    return seconds


def validate_server_name(value: object, field_name: str = "Name") -> str:
    """Return a server name without surrounding spaces.

    Names are free text and need not be unique, but they are not empty, have at
    most 64 characters and contain no control characters, because they are
    shown in tables and log lines.

    Raises:
        ValidationError: The value breaks these rules.
    """
    name = require_text(value, field_name).strip()
    fix = "Give a name of 1 to 64 characters on one line, e.g. Clinic PACS"

    if not name:
        raise ValidationError(field_name, value, "is empty", fix)
    if len(name) > MAX_NAME_LENGTH:
        problem = f"has {len(name)} characters, more than 64"
        raise ValidationError(field_name, value, problem, fix)
    if any(is_control_character(char) for char in name):
        raise ValidationError(field_name, value, "contains a control character", fix)
    return name


def is_control_character(char: str) -> bool:
    """Return True for control characters, lone surrogates and line breaks."""
    return unicodedata.category(char) in {"Cc", "Cs", "Zl", "Zp"}


def validate_optional_path(value: object, field_name: str) -> Path | None:
    """Return a file path, or None for a missing or empty value.

    Whether the file exists is checked when it is used, not here, because it
    may sit on a drive that is not mounted yet.
    """
    if value is None or isinstance(value, Path):
        return value
    text = require_text(value, field_name).strip()
    if not text:
        return None
    if any(is_control_character(char) for char in text):
        raise ValidationError(
            field_name, value, "contains a control character", "Give a file path"
        )
    return Path(text).expanduser()


def check_file_exists(path: Path | None, field_name: str) -> None:
    """Raise ValidationError unless ``path`` is None or an existing file.

    Settings files call this when the user enters a path, not when they are
    loaded, so a file on a drive that is not mounted yet does not make the
    whole settings file invalid.
    """
    if path is None:
        return
    if not path.exists():
        raise ValidationError(
            field_name, str(path), "does not exist", "Give the path of a PEM file"
        )
    if not path.is_file():
        raise ValidationError(
            field_name, str(path), "is not a file", "Give the path of a PEM file"
        )


def validate_base_url(value: object, field_name: str = "Base URL") -> str:
    """Return a DICOMweb base URL without its trailing slash.

    The URL is http or https, has a valid host and maybe a port and a path, and
    has no query, fragment or user name: credentials belong in the keyring.

    Raises:
        ValidationError: The value breaks these rules.
    """
    text = require_text(value, field_name).strip()
    fix = "Give the service root, e.g. https://cloud.example.com/dicom-web"
    if any(char.isspace() or is_control_character(char) for char in text):
        raise ValidationError(
            field_name, value, "contains spaces or control characters", fix
        )

    parts = urlsplit(text)
    if parts.scheme.lower() not in {"http", "https"}:
        raise ValidationError(
            field_name, value, "does not start with http:// or https://", fix
        )
    if parts.username is not None or parts.password is not None:
        # The rejected URL is shown without its user part, which may hold a password.
        shown = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
        problem = "contains a user name or password"
        fix = "Remove it from the URL and enter the credentials separately"
        raise ValidationError(field_name, shown, problem, fix)
    if parts.query or parts.fragment or text.endswith(("?", "#")):
        raise ValidationError(field_name, value, "has a query or fragment", fix)

    host = parts.hostname or ""
    if not (_is_ip_address(host) or _is_host_name(host)):
        raise ValidationError(field_name, value, "has no valid host", fix)
    try:
        port = parts.port
    except ValueError as err:
        raise ValidationError(field_name, value, "has an invalid port", fix) from err
    if port == 0:
        raise ValidationError(field_name, value, "has an invalid port", fix)

    path = parts.path.rstrip("/")
    return urlunsplit((parts.scheme.lower(), parts.netloc, path, "", ""))


def require_bool(value: object, field_name: str) -> bool:
    """Return ``value`` when it is a bool.

    Raises:
        ValidationError: ``value`` is not True or False.
    """
    if not isinstance(value, bool):
        raise ValidationError(
            field_name, value, "is not true or false", "Give true or false"
        )
    return value


_REQUIRED: Any = object()


class JsonMembers:
    """The members of a JSON object being read, to catch unknown and missing ones."""

    def __init__(self, data: object, where: str) -> None:
        if not isinstance(data, Mapping):
            raise ValidationError(
                where, None, "is not a JSON object", "Give an object {...}"
            )
        self._data: Mapping[str, Any] = data
        self._where = where
        self._taken: set[str] = set()

    def take(self, name: str, default: Any = _REQUIRED) -> Any:
        """Return member ``name``, or ``default``; without a default it is required."""
        self._taken.add(name)
        if name in self._data:
            return self._data[name]
        if default is _REQUIRED:
            raise ValidationError(
                self._where, None, f"has no {name!r} member", f"Add {name!r}"
            )
        return default

    def finish(self) -> None:
        """Raise ValidationError when the object has members never taken."""
        unknown = sorted(set(self._data) - self._taken)
        if unknown:
            names = ", ".join(repr(name) for name in unknown)
            known = ", ".join(repr(name) for name in sorted(self._taken))
            raise ValidationError(
                self._where,
                None,
                f"has unknown members {names}",
                f"Check the spelling; known members are {known}",
            )


def path_to_json(path: Path | None) -> str | None:
    """Return ``path`` as JSON text, or None."""
    return None if path is None else str(path)
