"""Application settings: validation by name, character sets and persistence."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from eyer_desktop.core.errors import ConfigError, ValidationError
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.settings import (
    MAX_PREFIX_BYTES,
    SETTING_NAMES,
    AppSettings,
    CharacterSet,
)

TEXT_SETTINGS = [
    "dicom_prefix",
    "institution_name",
    "device_serial_number",
    "software_version",
]

# Text a DICOM LO value may contain: no control characters, no backslash.
lo_characters = st.characters(
    exclude_categories=["Cc", "Cs", "Zl", "Zp"], exclude_characters="\\"
)


def test_defaults() -> None:
    defaults = AppSettings()

    assert defaults.dicom_prefix == ""
    assert defaults.institution_name == ""
    assert defaults.specific_character_set is CharacterSet.UTF8
    assert defaults.get("specific_character_set") == "ISO_IR 192"
    assert defaults.default_ae_title == "EYERDESKTOP"


def test_setting_names_are_stable() -> None:
    assert SETTING_NAMES == (
        "dicom_prefix",
        "institution_name",
        "device_serial_number",
        "software_version",
        "specific_character_set",
        "default_ae_title",
    )


def test_set_and_get_by_name() -> None:
    changed = (
        AppSettings()
        .with_value("dicom_prefix", "phelcom_")
        .with_value("institution_name", "Clínica São José")
        .with_value("device_serial_number", "EY-000123")
        .with_value("software_version", "3.2.1")
        .with_value("specific_character_set", "iso_ir 100")
        .with_value("default_ae_title", " EYERCLINIC ")
    )

    assert changed.get("dicom_prefix") == "phelcom_"
    assert changed.get("institution_name") == "Clínica São José"
    assert changed.get("device_serial_number") == "EY-000123"
    assert changed.get("software_version") == "3.2.1"
    assert changed.get("specific_character_set") == "ISO_IR 100"
    assert changed.get("default_ae_title") == "EYERCLINIC"


def test_with_value_leaves_original() -> None:
    original = AppSettings()

    original.with_value("dicom_prefix", "phelcom_")

    assert original.dicom_prefix == ""


def test_unknown_setting_lists_names() -> None:
    with pytest.raises(ValidationError) as caught:
        AppSettings().with_value("dicom_prefx", "x")

    message = str(caught.value)
    assert caught.value.field == "Setting"
    assert "'dicom_prefx'" in message
    assert "dicom_prefix" in message

    with pytest.raises(ValidationError, match="dicom_prefx"):
        AppSettings().get("dicom_prefx")


@pytest.mark.parametrize("name", TEXT_SETTINGS)
@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\\b", "backslash"),
        ("line\nbreak", "control character"),
        ("tab\there", "control character"),
        ("x" * 65, "more than"),
    ],
)
def test_invalid_text_names_setting(name: str, value: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem) as caught:
        AppSettings().with_value(name, value)

    assert name in caught.value.field
    assert name in str(caught.value)


def test_prefix_leaves_room_for_document() -> None:
    longest = "p" * MAX_PREFIX_BYTES

    assert AppSettings().with_value("dicom_prefix", longest).dicom_prefix == longest
    with pytest.raises(ValidationError, match=f"more than {MAX_PREFIX_BYTES}"):
        AppSettings().with_value("dicom_prefix", longest + "p")


def test_prefix_plus_typical_document_fits_lo() -> None:
    prefix = "p" * MAX_PREFIX_BYTES
    cns_number = "700000000000005"  # 15 digits

    assert len((prefix + cns_number).encode("utf-8")) <= 64


def test_length_counted_in_bytes_of_charset() -> None:
    name = "é" * 40
    latin1 = AppSettings(specific_character_set=CharacterSet.LATIN1)

    assert latin1.with_value("institution_name", name).institution_name == name
    with pytest.raises(ValidationError, match="80 bytes in ISO_IR 192"):
        AppSettings().with_value("institution_name", name)


def test_latin1_rejects_other_scripts() -> None:
    latin1 = AppSettings(specific_character_set=CharacterSet.LATIN1)

    with pytest.raises(ValidationError, match="ISO_IR 100 cannot encode") as caught:
        latin1.with_value("institution_name", "Clínica 東京")

    assert "institution_name" in caught.value.field
    assert "ISO_IR 192" in caught.value.fix


def test_charset_change_checks_other_settings() -> None:
    unicode_name = AppSettings().with_value("institution_name", "Клиника")

    with pytest.raises(ValidationError, match="institution_name"):
        unicode_name.with_value("specific_character_set", "ISO_IR 100")


def test_unknown_charset_lists_choices() -> None:
    with pytest.raises(ValidationError, match="ISO_IR 192, ISO_IR 100") as caught:
        AppSettings().with_value("specific_character_set", "ISO_IR 6")

    assert "specific_character_set" in caught.value.field


def test_default_ae_title_validated() -> None:
    with pytest.raises(ValidationError, match="backslash") as caught:
        AppSettings().with_value("default_ae_title", "EYER\\DESK")

    assert "default_ae_title" in caught.value.field


@given(prefix=st.text(alphabet=lo_characters, max_size=MAX_PREFIX_BYTES))
def test_valid_prefix_round_trips(prefix: str) -> None:
    stripped = prefix.strip(" ")
    if len(stripped.encode("utf-8")) > MAX_PREFIX_BYTES:
        with pytest.raises(ValidationError, match="dicom_prefix"):
            AppSettings().with_value("dicom_prefix", prefix)
        return

    accepted = AppSettings().with_value("dicom_prefix", prefix)

    assert accepted.dicom_prefix == stripped
    assert AppSettings.from_json(json.loads(json.dumps(accepted.to_json()))) == accepted


@settings(deadline=None, max_examples=30)
@given(
    values=st.fixed_dictionaries(
        {
            "dicom_prefix": st.text(alphabet=lo_characters, max_size=10),
            "institution_name": st.text(alphabet=lo_characters, max_size=16),
            "device_serial_number": st.from_regex(r"[A-Z0-9-]{0,20}", fullmatch=True),
            "software_version": st.from_regex(r"[0-9.]{0,10}", fullmatch=True),
            "specific_character_set": st.sampled_from(["ISO_IR 192"]),
            "default_ae_title": st.from_regex(r"[A-Z][A-Z0-9_]{0,15}", fullmatch=True),
        }
    )
)
def test_file_round_trip(values: dict[str, str]) -> None:
    original = AppSettings(**values)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "settings.json"

        original.save(path)
        loaded = AppSettings.load(path)

    assert loaded == original


def test_missing_file_gives_defaults(isolated_profile: AppPaths) -> None:
    assert AppSettings.load(isolated_profile.settings_file) == AppSettings()


def test_saved_to_profile_settings_file(isolated_profile: AppPaths) -> None:
    path = isolated_profile.settings_file
    AppSettings().with_value("dicom_prefix", "phelcom_").save(path)

    document = json.loads(path.read_text())

    assert document["schema_version"] == 1
    assert document["dicom_prefix"] == "phelcom_"
    assert document["specific_character_set"] == "ISO_IR 192"


def test_missing_members_take_defaults(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "dicom_prefix": "phelcom_"}))

    loaded = AppSettings.load(path)

    assert loaded == AppSettings(dicom_prefix="phelcom_")


def test_unknown_member_moves_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    document = {"schema_version": 1, "dicom_prefx": "phelcom_"}
    path.write_text(json.dumps(document))

    with pytest.raises(ConfigError) as caught:
        AppSettings.load(path)

    (moved,) = tmp_path.glob("settings.json.damaged-*")
    assert json.loads(moved.read_text()) == document
    assert not path.exists()
    assert "'dicom_prefx'" in str(caught.value)
    assert str(moved) in str(caught.value)


def test_invalid_value_moves_file_aside(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "default_ae_title": ""}))

    with pytest.raises(ConfigError, match="default_ae_title"):
        AppSettings.load(path)

    assert len(list(tmp_path.glob("settings.json.damaged-*"))) == 1
    assert AppSettings.load(path) == AppSettings()


def test_non_text_value_rejected(tmp_path: Path) -> None:
    path = tmp_path / "settings.json"
    path.write_text(json.dumps({"schema_version": 1, "software_version": 3.2}))

    with pytest.raises(ConfigError, match=r"software_version.*is not text"):
        AppSettings.load(path)
