"""Atomic JSON documents: round trip, no half-written files, damaged files kept."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eyer_desktop.core.errors import ConfigError
from eyer_desktop.core.jsonstore import (
    damaged_copies,
    move_aside,
    read_json_document,
    write_json_atomic,
)

DAMAGED_GLOB = "doc.json.damaged-*"

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=4)
        | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


def folder_listing(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir())


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    data = {"schema_version": 1, "name": "Clínica São José", "port": 104}

    write_json_atomic(path, data)

    assert read_json_document(path, "test", 1) == data
    assert path.read_bytes().endswith(b"\n")
    assert "Clínica São José" in path.read_text(encoding="utf-8")


@given(body=st.dictionaries(st.text(), json_values, max_size=6))
def test_round_trip_any_json(body: dict[str, Any]) -> None:
    data = {**body, "schema_version": 1}
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "doc.json"

        write_json_atomic(path, data)

        assert read_json_document(path, "test", 1) == data
        assert folder_listing(Path(folder)) == ["doc.json"]


def test_write_leaves_no_temporary_files(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"

    for version in range(5):
        write_json_atomic(path, {"schema_version": 1, "count": version})

    assert folder_listing(tmp_path) == ["doc.json"]
    assert json.loads(path.read_text())["count"] == 4


def test_write_creates_missing_folder(tmp_path: Path) -> None:
    path = tmp_path / "config" / "nested" / "doc.json"

    write_json_atomic(path, {"schema_version": 1})

    assert read_json_document(path, "test", 1) == {"schema_version": 1}


@pytest.mark.parametrize(
    ("bad_value", "error"),
    [(object(), TypeError), (float("nan"), ValueError), ("\ud800", ValueError)],
)
def test_serialisation_failure_keeps_original(
    tmp_path: Path, bad_value: object, error: type[Exception]
) -> None:
    path = tmp_path / "doc.json"
    write_json_atomic(path, {"schema_version": 1, "value": "original"})
    original = path.read_bytes()

    with pytest.raises(error):
        write_json_atomic(path, {"schema_version": 1, "value": bad_value})

    assert path.read_bytes() == original
    assert folder_listing(tmp_path) == ["doc.json"]


def test_unwritable_folder_raises_config_error(tmp_path: Path) -> None:
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("a file where a folder is expected")

    with pytest.raises(ConfigError, match="Cannot write") as caught:
        write_json_atomic(not_a_folder / "doc.json", {"schema_version": 1})

    assert str(not_a_folder) in str(caught.value)
    assert not_a_folder.read_text() == "a file where a folder is expected"


def test_missing_file_reads_as_none(tmp_path: Path) -> None:
    assert read_json_document(tmp_path / "absent.json", "test", 1) is None


def test_older_schema_version_is_returned(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    write_json_atomic(path, {"schema_version": 1, "a": 1})

    assert read_json_document(path, "test", 3) == {"schema_version": 1, "a": 1}


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b'{"schema_version": 1, "name": ', "invalid JSON"),
        (b"", "invalid JSON"),
        (b'{"schema_version": 1, "name": "\xff"}', "not UTF-8"),
        (b'[{"schema_version": 1}]', "top level is a list"),
        (b'"text"', "top level is a str"),
        (b'{"name": "x"}', "'schema_version' is missing"),
        (b'{"schema_version": "1"}', "not an integer"),
        (b'{"schema_version": true}', "not an integer"),
        (b'{"schema_version": 1.0}', "not an integer"),
        (b'{"schema_version": 0}', "is unknown"),
        (b'{"schema_version": 2}', "newer than this version"),
        (b'{"schema_version": 1, "a": 1, "a": 2}', "'a' appears twice"),
        (b'{"schema_version": 1, "a": NaN}', "NaN is not a valid JSON number"),
        (b"[" * 100_000, "nested too deeply"),
        (b'{"schema_version": 1, "a": ' + b"[" * 100_000, "nested too deeply"),
    ],
)
def test_damaged_file_is_moved_aside(
    tmp_path: Path, content: bytes, reason: str
) -> None:
    path = tmp_path / "doc.json"
    path.write_bytes(content)

    with pytest.raises(ConfigError) as caught:
        read_json_document(path, "test", 1)

    moved = list(tmp_path.glob(DAMAGED_GLOB))
    assert len(moved) == 1
    assert moved[0].read_bytes() == content
    assert not path.exists()
    message = str(caught.value)
    assert reason in message
    assert str(path) in message
    assert str(moved[0]) in message


def test_damaged_name_has_timestamp(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.write_text("{")

    with pytest.raises(ConfigError):
        read_json_document(path, "test", 1)

    (moved,) = tmp_path.glob(DAMAGED_GLOB)
    stamp = moved.name.removeprefix("doc.json.damaged-")
    assert dt.datetime.strptime(stamp, "%Y%m%dT%H%M%S")


def test_damaged_copies_lists_each_copy(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    (tmp_path / "other.json.damaged-20240506T070809").write_text("{")
    assert damaged_copies(path) == []

    targets = []
    for _ in range(2):
        path.write_text("{")
        targets.append(move_aside(path, dt.datetime(2024, 5, 6, 7, 8, 9)))

    assert damaged_copies(path) == targets


def test_move_aside_never_replaces_earlier_copy(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    now = dt.datetime(2024, 5, 6, 7, 8, 9)

    targets = []
    for attempt in range(3):
        path.write_text(f"damaged {attempt}")
        targets.append(move_aside(path, now))

    assert [target.name for target in targets] == [
        "doc.json.damaged-20240506T070809",
        "doc.json.damaged-20240506T070809-1",
        "doc.json.damaged-20240506T070809-2",
    ]
    assert [target.read_text() for target in targets] == [
        "damaged 0",
        "damaged 1",
        "damaged 2",
    ]


def test_unreadable_path_is_not_moved(tmp_path: Path) -> None:
    path = tmp_path / "doc.json"
    path.mkdir()

    with pytest.raises(ConfigError, match="Cannot read the test file"):
        read_json_document(path, "test", 1)

    assert path.is_dir()
    assert list(tmp_path.glob(DAMAGED_GLOB)) == []
