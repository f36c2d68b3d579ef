from __future__ import annotations

import io
import json

import pytest

from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.secrets import SecretStore
from eyer_desktop.core.servers import ServerList
from tests.cli.conftest import RunCli
from tests.helpers.keyrings import MemoryKeyring, installed_keyring


def add_pacs(run_cli: RunCli, name: str = "São Paulo PACS") -> str:
    result = run_cli(
        "servers", "add", "--name", name, "--kind", "dicom-storage",
        "--aet", "PACS", "--host", "127.0.0.1", "--port", "11112",
    )  # fmt: skip
    assert result.code == 0, result.err
    return result.out.strip()


def test_first_list_shows_only_primary(run_cli: RunCli) -> None:
    result = run_cli("servers", "list", "--json")

    servers = json.loads(result.out)
    assert result.code == 0
    assert [server["key"] for server in servers] == ["EYE000"]
    assert servers[0]["action"] == "primary"


def test_add_prints_generated_key_and_persists(
    run_cli: RunCli, isolated_profile: AppPaths
) -> None:
    key = add_pacs(run_cli)

    saved = ServerList.load(isolated_profile.servers_file).get(key)
    assert key == "SAO000"
    assert saved.name == "São Paulo PACS"
    assert saved.action.value == "mirror"
    assert saved.settings.calling_ae == "EYERDESKTOP"  # type: ignore[union-attr]


def test_add_uses_default_ae_title_setting(
    run_cli: RunCli, isolated_profile: AppPaths
) -> None:
    assert run_cli("settings", "set", "default_ae_title", "CLINIC1").code == 0

    key = add_pacs(run_cli)

    saved = ServerList.load(isolated_profile.servers_file).get(key)
    assert saved.settings.calling_ae == "CLINIC1"  # type: ignore[union-attr]


def test_edit_keeps_key_and_other_fields(
    run_cli: RunCli, isolated_profile: AppPaths
) -> None:
    key = add_pacs(run_cli)

    result = run_cli(
        "servers", "edit", key.lower(), "--name", "Arquivo", "--port", "4242"
    )

    saved = ServerList.load(isolated_profile.servers_file).get(key)
    assert result.code == 0, result.err
    assert saved.key == key
    assert saved.name == "Arquivo"
    assert saved.settings.port == 4242  # type: ignore[union-attr]
    assert saved.settings.called_ae == "PACS"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "0"), "--port 0: "),
        (("--port", "abc"), "--port 'abc': is not a number"),
        (("--aet", "BAD\\AE"), "--aet 'BAD"),
        (("--url", "https://x"), "--url: does not apply to dicom-storage"),
    ],
)
def test_edit_rejects_invalid_value_with_one_line(
    run_cli: RunCli, isolated_profile: AppPaths, args: tuple[str, ...], message: str
) -> None:
    key = add_pacs(run_cli)
    before = isolated_profile.servers_file.read_bytes()

    result = run_cli("servers", "edit", key, *args)

    assert result.code == 2
    assert message in result.err
    assert result.err.count("\n") == 1
    assert "Traceback" not in result.err
    assert isolated_profile.servers_file.read_bytes() == before


def test_primary_cannot_be_removed_or_mirrored(run_cli: RunCli) -> None:
    removed = run_cli("servers", "remove", "EYE000")
    mirrored = run_cli("servers", "set-action", "EYE000", "mirror")
    deactivated = run_cli("servers", "set-action", "eye000", "deactivated")

    assert removed.code == 2
    assert "cannot be removed" in removed.err
    assert mirrored.code == 2
    assert "primary or deactivated" in mirrored.err
    assert deactivated.code == 0
    assert deactivated.out.strip() == "EYE000: deactivated"


def test_other_server_cannot_become_primary(run_cli: RunCli) -> None:
    key = add_pacs(run_cli)

    result = run_cli("servers", "set-action", key, "primary")

    assert result.code == 2
    assert "reserved for the primary cloud" in result.err


def test_unknown_key_names_known_keys(run_cli: RunCli) -> None:
    result = run_cli("servers", "show", "ZZZ999")

    assert result.code == 2
    assert "ZZZ999" in result.err
    assert "EYE000" in result.err


def test_damaged_server_file_exits_3(
    run_cli: RunCli, isolated_profile: AppPaths
) -> None:
    isolated_profile.config_dir.mkdir(parents=True)
    isolated_profile.servers_file.write_text("{not json")

    result = run_cli("servers", "list")

    assert result.code == 3
    assert "damaged" in result.err or "moved" in result.err
    assert list(isolated_profile.config_dir.glob("servers.json.damaged-*"))


def test_dicomweb_secret_goes_to_keyring_only(
    run_cli: RunCli, isolated_profile: AppPaths, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-token\n"))
    with installed_keyring(MemoryKeyring()):
        result = run_cli(
            "servers", "add", "--name", "Nuvem", "--kind", "dicomweb",
            "--url", "https://127.0.0.1:8443/dicom-web", "--auth", "bearer",
            "--secret-stdin",
        )  # fmt: skip
        stored = SecretStore().get(result.out.strip())

    assert result.code == 0, result.err
    assert stored == "s3cret-token"
    assert "s3cret" not in isolated_profile.servers_file.read_text()


def test_settings_set_and_show(run_cli: RunCli) -> None:
    set_result = run_cli("settings", "set", "dicom_prefix", "phelcom_")
    show_result = run_cli("settings", "show", "--json")

    assert set_result.code == 0
    assert json.loads(show_result.out)["dicom_prefix"] == "phelcom_"


def test_settings_unknown_name_lists_names(run_cli: RunCli) -> None:
    result = run_cli("settings", "set", "prefix", "x")

    assert result.code == 2
    assert "dicom_prefix" in result.err


@pytest.mark.parametrize("action", ["show", "delete"])
def test_exams_unknown_id_exits_2(run_cli: RunCli, action: str) -> None:
    result = run_cli("exams", action, "deadbeef")

    assert result.code == 2
    assert "'deadbeef'" in result.err
    assert "exams list" in result.err


def test_remove_dicomweb_without_auth_needs_no_keyring(run_cli: RunCli) -> None:
    added = run_cli(
        "servers", "add", "--name", "Nuvem", "--kind", "dicomweb",
        "--url", "https://127.0.0.1:8443/dicom-web", "--auth", "none",
    )  # fmt: skip
    key = added.out.strip()

    result = run_cli("servers", "remove", key)

    assert result.code == 0, result.err
    assert result.err == ""
    assert f"{key}: removed" in result.out


def test_remove_warns_when_secret_stays(
    run_cli: RunCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("s3cret-token\n"))
    with installed_keyring(MemoryKeyring()):
        added = run_cli(
            "servers", "add", "--name", "Nuvem", "--kind", "dicomweb",
            "--url", "https://127.0.0.1:8443/dicom-web", "--auth", "bearer",
            "--secret-stdin",
        )  # fmt: skip
    key = added.out.strip()

    result = run_cli("servers", "remove", key)

    assert result.code == 0
    assert f"{key}: removed" in result.out
    assert result.err.startswith(f"warning: {key} was removed, but its password")
    assert key not in run_cli("servers", "list").out
