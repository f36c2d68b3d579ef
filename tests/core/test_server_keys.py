"""Server keys: generation from names, uniqueness, stability, validation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eyer_desktop.core.errors import ConfigError, ValidationError
from eyer_desktop.core.server_settings import DicomStorageSettings
from eyer_desktop.core.servers import (
    ServerAction,
    ServerList,
    generate_key,
    key_letters,
    validate_key,
)

KEY_REGEX = re.compile(r"^[A-Za-z]{3}[0-9]{3}$")

STORAGE = DicomStorageSettings(called_ae="PACS", host="127.0.0.1", port=11112)

# Names the server list accepts: 1 to 64 characters after stripping, no control
# characters, surrogates or line separators.
valid_names = (
    st.text(
        alphabet=st.characters(exclude_categories=["Cc", "Cs", "Zl", "Zp"]),
        min_size=1,
        max_size=64,
    )
    .map(str.strip)
    .filter(bool)
)


def add_storage(servers: ServerList, name: str) -> str:
    return servers.add(name, ServerAction.MIRROR, STORAGE).key


@given(name=st.text(), keys_in_use=st.sets(st.from_regex(KEY_REGEX, fullmatch=True)))
def test_generated_key_matches_format(name: str, keys_in_use: set[str]) -> None:
    key = generate_key(name, keys_in_use)

    assert KEY_REGEX.fullmatch(key)
    assert key.upper() not in {other.upper() for other in keys_in_use}


@given(name=st.text())
def test_first_key_uses_first_letters(name: str) -> None:
    letters = key_letters(name)
    expected_prefix = (letters + "XXX")[:3]

    assert generate_key(name, ()) == expected_prefix + "000"


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("São Paulo", "SAO000"),
        ("Ärztehaus Köln", "ARZ000"),
        ("Clínica Ótica", "CLI000"),
        ("pacs", "PAC000"),
        ("", "XXX000"),
        ("   \t ", "XXX000"),
        ("2024", "XXX000"),
        ("A1", "AXX000"),
        ("PA-7", "PAX000"),
        ("東京病院", "XXX000"),
        ("Ｐａｃｓ", "PAC000"),
        ("ﬁle server", "FIL000"),
    ],
)
def test_key_from_name(name: str, key: str) -> None:
    assert generate_key(name, ()) == key


def test_first_free_number_ignores_case() -> None:
    assert generate_key("PACS", ["pac000", "Pac001", "PAC003"]) == "PAC002"


def test_full_prefix_moves_to_other_letters_of_name() -> None:
    keys_in_use = [f"PAC{number:03d}" for number in range(1000)]

    assert generate_key("PACS", keys_in_use) == "PAS000"


def test_full_padded_prefix_varies_last_letter() -> None:
    keys_in_use = [f"AXX{number:03d}" for number in range(1000)]

    assert generate_key("A", keys_in_use) == "AXA000"


def test_two_thousand_servers_named_pacs() -> None:
    servers = ServerList.default()

    keys = [add_storage(servers, "PACS") for _ in range(2000)]

    assert all(KEY_REGEX.fullmatch(key) for key in keys)
    assert len({key.upper() for key in keys} | {"EYE000"}) == 2001
    assert keys[0] == "PAC000"
    assert keys[999] == "PAC999"
    assert keys[1000] == "PAS000"


@settings(deadline=None, max_examples=50)
@given(
    names=st.lists(
        st.sampled_from(
            ["PACS", "pacs", "Pacs 2", "PÁCS", "P.A.C.S", "Pa", "", "   ", "123"]
        ),
        min_size=1,
        max_size=60,
    )
)
def test_similar_names_get_unique_keys(names: list[str]) -> None:
    keys = [generate_key(name, []) for name in names[:1]]
    for name in names[1:]:
        keys.append(generate_key(name, keys))

    assert len({key.upper() for key in keys}) == len(keys)
    assert all(KEY_REGEX.fullmatch(key) for key in keys)


@settings(deadline=None, max_examples=50)
@given(names=st.lists(valid_names, min_size=1, max_size=30))
def test_unicode_names_in_list_get_unique_keys(names: list[str]) -> None:
    servers = ServerList.default()

    keys = [add_storage(servers, name) for name in names]

    assert all(KEY_REGEX.fullmatch(key) for key in keys)
    all_keys = [server.key.upper() for server in servers]
    assert len(set(all_keys)) == len(all_keys)


@given(original=valid_names, renamed=valid_names)
def test_rename_keeps_key(original: str, renamed: str) -> None:
    servers = ServerList.default()
    key = add_storage(servers, original)

    server = servers.rename(key, renamed)

    assert server.key == key
    assert server.name == renamed
    assert servers.get(key).name == renamed


def test_removed_key_is_never_reused() -> None:
    servers = ServerList.default()
    first = add_storage(servers, "PACS")
    servers.remove(first)

    second = add_storage(servers, "PACS")

    assert first == "PAC000"
    assert second == "PAC001"
    assert servers.retired_keys == ("PAC000",)


@given(key=st.from_regex(KEY_REGEX, fullmatch=True))
def test_valid_key_accepted(key: str) -> None:
    assert validate_key(key) == key


@given(text=st.text())
def test_invalid_key_rejected(text: str) -> None:
    if KEY_REGEX.fullmatch(text):
        return

    with pytest.raises(ValidationError) as caught:
        validate_key(text)

    assert caught.value.field == "Key"
    assert str(caught.value).startswith("Key")


def test_lookup_ignores_case() -> None:
    servers = ServerList.default()
    key = add_storage(servers, "Archive")

    assert servers.get(key.lower()).key == key
    assert servers.get(f" {key.title()} ").key == key
    assert key.lower() in servers


def test_unknown_key_lists_known_keys() -> None:
    servers = ServerList.default()
    add_storage(servers, "Archive")

    with pytest.raises(ValidationError) as caught:
        servers.get("ZZZ999")

    message = str(caught.value)
    assert "ZZZ999" in message
    assert "EYE000" in message
    assert "ARC000" in message


def write_servers_file(path: Path, keys: list[str]) -> None:
    servers = ServerList.default()
    document = servers.to_json()
    for key in keys:
        entry = {
            "key": key,
            "name": "Archive",
            "action": "mirror",
            "kind": "dicom-storage",
            "settings": STORAGE.to_json(),
        }
        document["servers"].append(entry)
    path.write_text(json.dumps(document))


@pytest.mark.parametrize("bad_key", ["PA0001", "PACS01", "ÁBC001", "AB 001", "abc1234"])
def test_invalid_key_in_file_rejected(tmp_path: Path, bad_key: str) -> None:
    path = tmp_path / "servers.json"
    write_servers_file(path, [bad_key])

    with pytest.raises(ConfigError) as caught:
        ServerList.load(path)

    message = str(caught.value)
    assert "Key of server" in message
    assert repr(bad_key) in message
    assert "three letters" in message


def test_duplicate_keys_in_file_rejected(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    write_servers_file(path, ["ARC000", "arc000"])

    with pytest.raises(ConfigError) as caught:
        ServerList.load(path)

    message = str(caught.value)
    assert "'arc000'" in message
    assert "more than once" in message
    assert "ARC000" in message


def test_lower_case_key_in_file_kept(tmp_path: Path) -> None:
    path = tmp_path / "servers.json"
    write_servers_file(path, ["arc007"])

    servers = ServerList.load(path)

    assert servers.get("ARC007").key == "arc007"
    assert add_storage(servers, "Archive") == "ARC000"
