"""Passwords and tokens of DICOMweb servers, kept only in the OS keyring.

Entries use the service name ``Eyer Desktop`` and the server key, upper-cased
so that keys differing only in case find the same entry. The keyring backend
is Windows Credential Manager, the macOS Keychain, or a Secret Service
provider (GNOME Keyring, KWallet) on Linux, as the ``keyring`` package picks
it. When no such backend works, every operation raises
:class:`SecretStoreError`: a secret is never written anywhere else.
"""

from __future__ import annotations

import logging

import keyring
from keyring.backend import KeyringBackend
from keyring.backends import chainer, fail, null

from eyer_desktop.core.errors import SecretStoreError, ValidationError
from eyer_desktop.core.servers import validate_key

logger = logging.getLogger(__name__)

SERVICE_NAME = "Eyer Desktop"

INSTALL_HINT = (
    "Passwords and tokens are kept only in the operating system keyring. On "
    "Linux, install and unlock a Secret Service provider such as GNOME Keyring "
    "(gnome-keyring) or KWallet, with its D-Bus session running. On Windows "
    "(Credential Manager) and macOS (Keychain) the keyring is built in."
)

# Backends raise keyring's own errors, but also their platform's: pywintypes.error
# on Windows, D-Bus and secretstorage exceptions on Linux, RuntimeError when a
# library is missing. Every one is turned into SecretStoreError with its cause.
_BACKEND_ERRORS = (Exception,)


class SecretStore:
    """The keyring entries of the servers' passwords and tokens."""

    def __init__(self, backend: KeyringBackend | None = None) -> None:
        """Use ``backend``, or the ``keyring`` package's current backend when None.

        With None, the backend is looked up at each call, so a backend set
        later with ``keyring.set_keyring`` is used.
        """
        self._backend = backend

    def backend(self) -> KeyringBackend:
        """Return the backend in use.

        Raises:
            SecretStoreError: No usable backend exists.
        """
        backend = self._backend
        if backend is None:
            try:
                backend = keyring.get_keyring()
            except _BACKEND_ERRORS as err:
                raise SecretStoreError(
                    f"The keyring could not be initialised: {err}. {INSTALL_HINT}"
                ) from err

        if not is_usable(backend):
            raise SecretStoreError(
                f"No usable keyring backend is available ({_backend_name(backend)})."
                f" {INSTALL_HINT}"
            )
        return backend

    def get(self, server_key: str) -> str | None:
        """Return the secret of server ``server_key``, or None when there is none.

        Raises:
            ValidationError: ``server_key`` is not a server key.
            SecretStoreError: The keyring is missing or failed.
        """
        username = _entry_name(server_key)
        backend = self.backend()
        try:
            return backend.get_password(SERVICE_NAME, username)
        except _BACKEND_ERRORS as err:
            raise _store_error("read", username, err) from err

    def set(self, server_key: str, secret: str) -> None:
        """Store ``secret`` for server ``server_key``, replacing any earlier one.

        Raises:
            ValidationError: ``server_key`` is not a server key, or ``secret``
                is empty.
            SecretStoreError: The keyring is missing or failed.
        """
        username = _entry_name(server_key)
        if not isinstance(secret, str) or not secret:
            raise ValidationError(
                "Password or token", None, "is empty", "Give the password or token"
            )

        backend = self.backend()
        try:
            backend.set_password(SERVICE_NAME, username, secret)
        except _BACKEND_ERRORS as err:
            raise _store_error("store", username, err) from err
        logger.info("Stored the secret of server %s in the keyring", username)

    def delete(self, server_key: str) -> bool:
        """Delete the secret of server ``server_key``.

        Returns:
            True when a secret was deleted, False when there was none.

        Raises:
            ValidationError: ``server_key`` is not a server key.
            SecretStoreError: The keyring is missing or failed.
        """
        if self.get(server_key) is None:
            return False

        username = _entry_name(server_key)
        try:
            self.backend().delete_password(SERVICE_NAME, username)
        except _BACKEND_ERRORS as err:
            raise _store_error("delete", username, err) from err
        logger.info("Deleted the secret of server %s from the keyring", username)
        return True


def is_usable(backend: KeyringBackend) -> bool:
    """Return False for backends that cannot keep a secret.

    Those are keyring's fail backend (raises on every call), its null backend
    (discards every secret) and a chainer with nothing to chain.
    """
    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    if isinstance(backend, chainer.ChainerBackend):
        return any(is_usable(member) for member in backend.backends)
    return True


def _entry_name(server_key: str) -> str:
    return validate_key(server_key, "Server key").upper()


def _backend_name(backend: KeyringBackend) -> str:
    backend_type = type(backend)
    return f"{backend_type.__module__}.{backend_type.__qualname__}"


def _store_error(operation: str, username: str, err: Exception) -> SecretStoreError:
    # The backends of keyring 25.7 put no password in their messages, only the
    # service name or the platform's error text.
    return SecretStoreError(
        f"The keyring failed to {operation} the secret of server {username}: "
        f"{err}. {INSTALL_HINT}"
    )
