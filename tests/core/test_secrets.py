"""Secrets in the keyring: storage, missing backends and failing backends."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from keyring.backends import chainer, fail, null

from eyer_desktop.core.errors import SecretStoreError, ValidationError
from eyer_desktop.core.secrets import SERVICE_NAME, SecretStore, is_usable
from tests.helpers.keyrings import LockedKeyring, MemoryKeyring, installed_keyring

SECRET = "Tr0ub4dor&3-cloud-token"


def test_set_get_delete_round_trip() -> None:
    with installed_keyring(MemoryKeyring()) as backend:
        store = SecretStore()

        store.set("EYE000", SECRET)
        assert store.get("EYE000") == SECRET
        assert backend.entries == {(SERVICE_NAME, "EYE000"): SECRET}

        assert store.delete("EYE000") is True
        assert store.get("EYE000") is None
        assert backend.entries == {}


def test_missing_secret_is_none() -> None:
    store = SecretStore(MemoryKeyring())

    assert store.get("PAC000") is None
    assert store.delete("PAC000") is False


def test_set_replaces_secret() -> None:
    store = SecretStore(MemoryKeyring())

    store.set("PAC000", "old")
    store.set("PAC000", "new")

    assert store.get("PAC000") == "new"


def test_key_case_is_ignored() -> None:
    backend = MemoryKeyring()
    store = SecretStore(backend)

    store.set("pac000", SECRET)

    assert store.get("PAC000") == SECRET
    assert store.get("Pac000") == SECRET
    assert list(backend.entries) == [(SERVICE_NAME, "PAC000")]


def test_servers_have_separate_secrets() -> None:
    store = SecretStore(MemoryKeyring())

    store.set("EYE000", "cloud")
    store.set("PAC000", "archive")

    assert store.get("EYE000") == "cloud"
    assert store.get("PAC000") == "archive"


@pytest.mark.parametrize("key", ["", "PACS", "PA0001", "EYE 000"])
def test_invalid_server_key_rejected(key: str) -> None:
    store = SecretStore(MemoryKeyring())

    with pytest.raises(ValidationError) as caught:
        store.set(key, SECRET)

    assert caught.value.field == "Server key"


def test_empty_secret_rejected() -> None:
    backend = MemoryKeyring()

    with pytest.raises(ValidationError, match="empty") as caught:
        SecretStore(backend).set("EYE000", "")

    assert caught.value.value is None
    assert backend.entries == {}


def assert_store_error(error: SecretStoreError) -> None:
    message = str(error)
    assert "keyring" in message
    assert "GNOME Keyring" in message
    assert SECRET not in message


@pytest.mark.parametrize("operation", ["get", "set", "delete"])
def test_fail_backend_raises(operation: str) -> None:
    with installed_keyring(fail.Keyring()):
        store = SecretStore()

        with pytest.raises(SecretStoreError) as caught:
            if operation == "set":
                store.set("EYE000", SECRET)
            else:
                getattr(store, operation)("EYE000")

    assert_store_error(caught.value)
    assert "No usable keyring backend" in str(caught.value)
    assert "keyring.backends.fail.Keyring" in str(caught.value)


def test_null_backend_raises() -> None:
    store = SecretStore(null.Keyring())

    with pytest.raises(SecretStoreError) as caught:
        store.set("EYE000", SECRET)

    assert_store_error(caught.value)


def test_empty_chainer_raises() -> None:
    backend = chainer.ChainerBackend()
    if backend.backends:
        pytest.skip("this machine has a keyring backend for the chainer")

    assert is_usable(backend) is False
    with pytest.raises(SecretStoreError):
        SecretStore(backend).get("EYE000")


def test_locked_keyring_raises_with_cause() -> None:
    store = SecretStore(LockedKeyring())

    with pytest.raises(SecretStoreError, match="failed to store") as caught:
        store.set("EYE000", SECRET)

    assert_store_error(caught.value)
    assert "Failed to unlock the collection" in str(caught.value)
    assert caught.value.__cause__ is not None


def test_secret_not_written_anywhere_on_failure(tmp_path: Path) -> None:
    with installed_keyring(fail.Keyring()), pytest.raises(SecretStoreError):
        SecretStore().set("EYE000", SECRET)

    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes()


def test_secret_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    store = SecretStore(MemoryKeyring())

    store.set("EYE000", SECRET)
    store.get("EYE000")
    store.delete("EYE000")
    with pytest.raises(SecretStoreError):
        SecretStore(LockedKeyring()).set("EYE000", SECRET)

    assert "EYE000" in caplog.text
    assert SECRET not in caplog.text


def test_memory_backend_usable() -> None:
    assert is_usable(MemoryKeyring()) is True
    assert is_usable(fail.Keyring()) is False
    assert is_usable(null.Keyring()) is False
