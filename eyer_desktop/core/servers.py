"""The server list: the archives, worklists and clouds exams are delivered to.

It follows the camera's Options > Synchronization > Servers screen. Each server
has a key, a name, an action and the settings of its kind (DICOM storage, DICOM
worklist or DICOMweb). The primary cloud (EyerCloud) is a DICOMweb server that
always exists, comes first, cannot be removed and is either Primary or
Deactivated. No other server can be Primary.

Keys are three letters folded from the name and three digits, for example
``SAO000`` for "São Paulo". Generated keys are upper case so they are easy to
type on the command line. Keys read from a file may use lower case, and every
comparison ignores case. A removed server's key is remembered as retired and
never given to a new server, because queued deliveries and logs refer to
servers by key.

The primary cloud starts with the Primary action and no base URL. Until a base
URL is set, :attr:`ServerList.primary_is_active` is False, and exams go to the
Contingency servers as they do when the primary is Deactivated. Setting the URL
is therefore the only step needed to start sending to the cloud.

Passwords and tokens of DICOMweb servers are not part of these objects or of
the file. They live in the OS keyring (:mod:`eyer_desktop.core.secrets`).

Every value is validated when an object is made, so a ``Server`` in hand is
always valid. The objects are frozen: edits go through :class:`ServerList`,
which checks the rules that involve more than one server.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import re
import string
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from eyer_desktop.core.errors import ConfigError, ValidationError
from eyer_desktop.core.fields import (
    JsonMembers,
    coerce_enum,
    require_bool,
    require_text,
    validate_server_name,
)
from eyer_desktop.core.jsonstore import (
    damaged_file_error,
    read_json_document,
    write_json_atomic,
)
from eyer_desktop.core.server_settings import (
    SETTINGS_CLASSES,
    DicomWebSettings,
    ServerKind,
    ServerSettings,
)

logger = logging.getLogger(__name__)

SCHEMA_VERSION = 1
DOCUMENT_KIND = "server list"

PRIMARY_CLOUD_NAME = "EyerCloud"

KEY_PATTERN = re.compile(r"[A-Za-z]{3}[0-9]{3}")
KEY_PAD_LETTER = "X"


class ServerAction(StrEnum):
    """Role of a server in the delivery of exams."""

    PRIMARY = "primary"
    """The primary cloud, which receives every exam."""
    MIRROR = "mirror"
    """Receives every exam, in addition to the primary."""
    CONTINGENCY = "contingency"
    """Receives an exam only when the primary could not take it."""
    MANUAL = "manual"
    """Receives an exam only when the user sends it there."""
    DEACTIVATED = "deactivated"
    """Receives nothing. Deliveries already queued for it wait."""


# Keys -----------------------------------------------------------------------


def validate_key(value: object, field_name: str = "Key") -> str:
    """Return a server key: three ASCII letters and three digits, e.g. PAC001.

    The case is kept as given.

    Raises:
        ValidationError: The value does not have that form.
    """
    key = require_text(value, field_name)
    if not KEY_PATTERN.fullmatch(key):
        raise ValidationError(
            field_name,
            value,
            "is not three letters A-Z followed by three digits",
            "Use a key such as PAC001",
        )
    return key


def key_letters(name: str) -> str:
    """Return the ASCII letters of ``name``, upper case, with accents folded.

    NFKD splits an accented letter into its base letter and a combining mark,
    so "São Paulo" gives "SAOPAULO". Characters with no ASCII letter in their
    decomposition (digits, punctuation, most non-Latin scripts) are skipped.
    """
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if c in string.ascii_letters).upper()


def generate_key(name: str, keys_in_use: Iterable[str]) -> str:
    """Return the first free key for a server called ``name``.

    The key is three letters from the name (padded with X when it has fewer)
    and the first number from 000 to 999 that no key in ``keys_in_use`` has,
    ignoring case. When all 1000 numbers of those letters are in use, other
    letters are tried in a fixed order. First come the other letter triples
    of the name, from its first ten letters in order. Then come the first two
    letters with each last letter A-Z, the first letter with each pair, and
    finally every triple. The result depends only on the two arguments.

    Raises:
        ConfigError: Every one of the 17,576,000 keys is in use.
    """
    in_use = {key.upper() for key in keys_in_use}
    seen: set[str] = set()

    for prefix in _candidate_prefixes(key_letters(name)):
        if prefix in seen:
            continue
        seen.add(prefix)
        for number in range(1000):
            key = f"{prefix}{number:03d}"
            if key not in in_use:
                return key

    raise ConfigError("Every server key is in use. Remove servers that are not needed.")


def _candidate_prefixes(letters: str) -> Iterator[str]:
    first = (letters + KEY_PAD_LETTER * 3)[:3]
    yield first

    for triple in itertools.combinations(letters[:10], 3):
        yield "".join(triple)

    alphabet = string.ascii_uppercase
    for last in alphabet:
        yield first[:2] + last
    for pair in itertools.product(alphabet, repeat=2):
        yield first[0] + "".join(pair)
    for any_triple in itertools.product(alphabet, repeat=3):
        yield "".join(any_triple)


# Servers --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True)
class Server:
    """One entry of the server list.

    Attributes:
        key: The server's identifier in queues, logs and the command line.
        name: Free text shown to the user.
        action: What the server receives.
        settings: How to reach it, by kind.
        is_primary_cloud: True for the primary cloud (EyerCloud), also while it
            is Deactivated.
    """

    key: str
    name: str
    action: ServerAction
    settings: ServerSettings
    is_primary_cloud: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", validate_key(self.key))
        object.__setattr__(self, "name", validate_server_name(self.name))
        object.__setattr__(
            self, "action", coerce_enum(ServerAction, self.action, "Action")
        )
        require_bool(self.is_primary_cloud, "Primary cloud")
        if not isinstance(self.settings, tuple(SETTINGS_CLASSES.values())):
            raise TypeError(
                f"settings must be a server settings object, not {self.settings!r}"
            )

        if self.is_primary_cloud:
            self._check_primary_cloud()
        else:
            self._check_other_server()

    def _check_primary_cloud(self) -> None:
        if not isinstance(self.settings, DicomWebSettings):
            raise ValidationError(
                "Kind",
                self.kind.value,
                f"is not possible for the primary cloud {self.key}",
                "The primary cloud is always a DICOMweb server",
            )
        if self.action not in {ServerAction.PRIMARY, ServerAction.DEACTIVATED}:
            raise ValidationError(
                "Action",
                self.action.value,
                f"is not possible for the primary cloud {self.key}",
                "Choose primary or deactivated",
            )

    def _check_other_server(self) -> None:
        if self.action is ServerAction.PRIMARY:
            raise ValidationError(
                "Action",
                self.action.value,
                f"is reserved for the primary cloud, and {self.key} is not it",
                "Choose mirror, contingency, manual or deactivated",
            )
        if (
            isinstance(self.settings, DicomWebSettings)
            and self.settings.base_url is None
        ):
            raise ValidationError(
                "Base URL",
                None,
                f"is missing for DICOMweb server {self.key}",
                "Give the service root, e.g. https://pacs.example.com/dicom-web",
            )

    @property
    def kind(self) -> ServerKind:
        return self.settings.KIND

    @property
    def is_storage(self) -> bool:
        """True for the kinds that receive exams: DICOM storage and DICOMweb."""
        return self.kind is not ServerKind.DICOM_WORKLIST

    @property
    def is_configured(self) -> bool:
        """False only for the primary cloud while it has no base URL."""
        return not (
            isinstance(self.settings, DicomWebSettings)
            and self.settings.base_url is None
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "action": self.action.value,
            "primary_cloud": self.is_primary_cloud,
            "kind": self.kind.value,
            "settings": self.settings.to_json(),
        }

    @classmethod
    def from_json(cls, data: object) -> Server:
        members = JsonMembers(data, "Server")
        key = members.take("key")
        name = members.take("name")
        action = members.take("action")
        is_primary_cloud = members.take("primary_cloud", False)
        kind = coerce_enum(ServerKind, members.take("kind"), "Kind")
        settings = SETTINGS_CLASSES[kind].from_json(members.take("settings"))
        members.finish()

        return cls(
            key=key,
            name=name,
            action=action,
            settings=settings,
            is_primary_cloud=is_primary_cloud,
        )


def default_primary_cloud() -> Server:
    """Return the primary cloud of a new server list: Primary, no base URL yet."""
    return Server(
        key=generate_key(PRIMARY_CLOUD_NAME, ()),
        name=PRIMARY_CLOUD_NAME,
        action=ServerAction.PRIMARY,
        settings=DicomWebSettings(),
        is_primary_cloud=True,
    )


class ServerList:
    """The ordered servers, primary cloud first, with the rules between them."""

    def __init__(
        self, servers: Iterable[Server], retired_keys: Iterable[str] = ()
    ) -> None:
        """Check and hold ``servers``.

        Args:
            servers: The primary cloud first, then the others in display order.
            retired_keys: Keys of removed servers, never given out again.

        Raises:
            ValidationError: The primary cloud is missing, not first or twice
                there, or a key appears twice (ignoring case).
        """
        self._servers = list(servers)
        self._retired = [validate_key(key, "Retired key") for key in retired_keys]
        self._check_primary_cloud()
        self._check_unique_keys()

    def _check_primary_cloud(self) -> None:
        primaries = [server.key for server in self._servers if server.is_primary_cloud]
        fix = "Keep exactly one primary cloud, as the first server"
        if not primaries:
            raise ValidationError("Primary cloud", None, "is missing", fix)
        if len(primaries) > 1:
            raise ValidationError(
                "Primary cloud", ", ".join(primaries), "appears more than once", fix
            )
        if not self._servers[0].is_primary_cloud:
            raise ValidationError("Primary cloud", primaries[0], "is not first", fix)

    def _check_unique_keys(self) -> None:
        seen: dict[str, str] = {}
        for key in [server.key for server in self._servers] + self._retired:
            earlier = seen.get(key.upper())
            if earlier is not None:
                raise ValidationError(
                    "Key",
                    key,
                    f"is used more than once (also as {earlier}; case is ignored)",
                    "Give every server its own key, and never reuse a retired key",
                )
            seen[key.upper()] = key

    @classmethod
    def default(cls) -> ServerList:
        """Return a list holding only the primary cloud, not configured yet."""
        return cls([default_primary_cloud()])

    # Queries

    def __iter__(self) -> Iterator[Server]:
        return iter(list(self._servers))

    def __len__(self) -> int:
        return len(self._servers)

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.find(key) is not None

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ServerList):
            return NotImplemented
        return self._servers == other._servers and self._retired == other._retired

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        keys = ", ".join(server.key for server in self._servers)
        return f"ServerList([{keys}])"

    @property
    def primary(self) -> Server:
        """The primary cloud."""
        return self._servers[0]

    @property
    def primary_is_active(self) -> bool:
        """True when the primary cloud is Primary and has a base URL.

        When False, exams go to the Contingency servers.
        """
        primary = self.primary
        return primary.action is ServerAction.PRIMARY and primary.is_configured

    @property
    def retired_keys(self) -> tuple[str, ...]:
        """Keys of removed servers, which are never given out again."""
        return tuple(self._retired)

    def find(self, key: str) -> Server | None:
        """Return the server whose key is ``key``, ignoring case, or None."""
        normalised = key.strip().upper()
        for server in self._servers:
            if server.key.upper() == normalised:
                return server
        return None

    def get(self, key: str) -> Server:
        """Return the server whose key is ``key``, ignoring case.

        Raises:
            ValidationError: No server has that key; the message lists the keys.
        """
        server = self.find(key)
        if server is None:
            known = ", ".join(server.key for server in self._servers)
            raise ValidationError(
                "Server key", key, "is not in the server list", f"Use one of: {known}"
            )
        return server

    def with_action(self, action: ServerAction) -> list[Server]:
        """Return the servers whose action is ``action``, in list order."""
        return [server for server in self._servers if server.action is action]

    # Changes

    def add(
        self, name: str, action: ServerAction | str, settings: ServerSettings
    ) -> Server:
        """Add a server at the end of the list, with a newly generated key.

        Raises:
            ValidationError: A value is invalid, or ``action`` is Primary.
        """
        name = validate_server_name(name)
        action = coerce_enum(ServerAction, action, "Action")
        key = generate_key(name, self._all_keys())
        server = Server(key=key, name=name, action=action, settings=settings)

        self._servers.append(server)
        logger.info("Added server %s (%s, %s)", key, server.kind, server.action)
        return server

    def edit(
        self,
        key: str,
        *,
        name: str | None = None,
        action: ServerAction | str | None = None,
        settings: ServerSettings | None = None,
    ) -> Server:
        """Change the name, action or settings of a server; its key stays.

        All changes are checked together before any is applied.

        Raises:
            ValidationError: The key is unknown, a value is invalid, or the
                change breaks a rule of the primary cloud.
        """
        index = self._index(key)
        old = self._servers[index]
        changes: dict[str, Any] = {}
        if name is not None:
            changes["name"] = name
        if action is not None:
            changes["action"] = coerce_enum(ServerAction, action, "Action")
        if settings is not None:
            changes["settings"] = settings

        new = dataclasses.replace(old, **changes)
        self._servers[index] = new
        if new.action is not old.action:
            logger.info("Server %s action: %s -> %s", new.key, old.action, new.action)
        elif new != old:
            logger.info("Edited server %s", new.key)
        return new

    def rename(self, key: str, name: str) -> Server:
        """Rename a server; its key stays."""
        return self.edit(key, name=name)

    def set_action(self, key: str, action: ServerAction | str) -> Server:
        """Change what a server receives.

        Raises:
            ValidationError: The primary cloud is given an action other than
                Primary or Deactivated, or another server is made Primary.
        """
        return self.edit(key, action=action)

    def update_settings(self, key: str, settings: ServerSettings) -> Server:
        """Replace the settings of a server, of the same kind or another one.

        Raises:
            ValidationError: The primary cloud is given non-DICOMweb settings.
        """
        return self.edit(key, settings=settings)

    def remove(self, key: str) -> Server:
        """Remove a server and retire its key, so no new server gets it.

        The caller deletes its keyring secret, if any.

        Raises:
            ValidationError: The key is unknown or is the primary cloud's.
        """
        index = self._index(key)
        server = self._servers[index]
        if server.is_primary_cloud:
            raise ValidationError(
                "Server",
                server.key,
                "is the primary cloud, which cannot be removed",
                "Set its action to deactivated instead",
            )

        del self._servers[index]
        self._retired.append(server.key)
        logger.info("Removed server %s", server.key)
        return server

    def _index(self, key: str) -> int:
        server = self.get(key)
        return self._servers.index(server)

    def _all_keys(self) -> list[str]:
        return [server.key for server in self._servers] + self._retired

    # Persistence

    def to_json(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "servers": [server.to_json() for server in self._servers],
            "retired_keys": list(self._retired),
        }

    @classmethod
    def from_json(cls, document: object) -> ServerList:
        """Build the list from a parsed servers document.

        Raises:
            ValidationError: A member is missing, unknown or invalid; the field
                names the server it belongs to.
        """
        members = JsonMembers(document, "Server list")
        members.take("schema_version")
        entries = members.take("servers")
        retired = members.take("retired_keys", [])
        members.finish()

        if not isinstance(entries, list):
            raise ValidationError(
                "Servers", None, "is not a JSON array", "Give a list [...]"
            )
        if not isinstance(retired, list):
            raise ValidationError(
                "Retired keys", None, "is not a JSON array", "Give a list [...]"
            )

        servers = [
            _server_from_json(entry, position)
            for position, entry in enumerate(entries, 1)
        ]
        return cls(servers, retired)

    @classmethod
    def load(cls, path: Path) -> ServerList:
        """Read the list from ``path``, or return the default list when it is missing.

        Raises:
            ConfigError: The file cannot be read, or it is damaged or invalid;
                then it has been moved aside and the message names both paths.
        """
        document = read_json_document(path, DOCUMENT_KIND, SCHEMA_VERSION)
        if document is None:
            logger.info(
                "No server list at %s; starting with the primary cloud only", path
            )
            return cls.default()

        try:
            servers = cls.from_json(document)
        except ValidationError as err:
            raise damaged_file_error(path, DOCUMENT_KIND, str(err)) from err

        logger.info("Loaded %d servers from %s", len(servers), path)
        return servers

    def save(self, path: Path) -> None:
        """Write the list to ``path`` atomically.

        Raises:
            ConfigError: The file cannot be written.
        """
        write_json_atomic(path, self.to_json())
        logger.info("Saved %d servers to %s", len(self), path)


def _server_from_json(entry: object, position: int) -> Server:
    """Read one server, naming it in the error when one of its values is invalid."""
    try:
        return Server.from_json(entry)
    except ValidationError as err:
        key = entry.get("key") if isinstance(entry, Mapping) else None
        where = f"server {key}" if isinstance(key, str) else f"server number {position}"
        raise ValidationError(
            f"{err.field} of {where}", err.value, err.problem, err.fix
        ) from err
