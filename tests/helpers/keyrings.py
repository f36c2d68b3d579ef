"""Fake keyring backends, because the test machines have no OS keyring.

``MemoryKeyring`` keeps entries in a dict, in place of Windows Credential
Manager, the macOS Keychain or a Secret Service. ``LockedKeyring`` raises
``KeyringLocked`` on every call, the fault of a keyring the user did not
unlock, which no backend available to the tests can produce.

Neither class defines ``priority``, so keyring never picks them on its own:
a test installs one with :func:`installed_keyring`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TypeVar

import keyring
import keyring.errors
from keyring.backend import KeyringBackend

BackendT = TypeVar("BackendT", bound=KeyringBackend)


class MemoryKeyring(KeyringBackend):
    """Fake keyring backend that keeps passwords in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        try:
            del self.entries[(service, username)]
        except KeyError as err:
            raise keyring.errors.PasswordDeleteError("Password not found") from err


class LockedKeyring(KeyringBackend):
    """Fake keyring backend whose collection stays locked."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def set_password(self, service: str, username: str, password: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")

    def delete_password(self, service: str, username: str) -> None:
        raise keyring.errors.KeyringLocked("Failed to unlock the collection!")


@contextmanager
def installed_keyring(backend: BackendT) -> Iterator[BackendT]:
    """Make ``backend`` keyring's current backend, and restore the previous one."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)
