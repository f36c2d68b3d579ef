"""Damaged configuration files, as every command reports them."""

from __future__ import annotations

import pytest

from eyer_desktop.core.paths import AppPaths
from tests.cli.conftest import RunCli

DEEPLY_NESTED = "[" * 100_000


@pytest.mark.parametrize(
    ("name", "command"),
    [("servers.json", ("servers", "list")), ("settings.json", ("settings", "show"))],
)
def test_deeply_nested_file_is_damaged(
    run_cli: RunCli, isolated_profile: AppPaths, name: str, command: tuple[str, str]
) -> None:
    isolated_profile.config_dir.mkdir(parents=True)
    (isolated_profile.config_dir / name).write_text(DEEPLY_NESTED)

    result = run_cli(*command)

    assert result.code == 3
    assert "Traceback" not in result.err
    error = result.err.splitlines()[-1]
    assert error.startswith("error: The ")
    assert f"{name} is damaged: arrays or objects are nested too deeply" in error


def test_damaged_copy_warned_every_run(
    run_cli: RunCli, isolated_profile: AppPaths
) -> None:
    servers_file = isolated_profile.servers_file
    servers_file.parent.mkdir(parents=True)
    servers_file.write_text("{")
    assert run_cli("servers", "list").code == 3
    [copy] = servers_file.parent.glob("servers.json.damaged-*")

    first = run_cli("servers", "list")
    second = run_cli("settings", "show")

    for result in (first, second):
        assert result.code == 0, result.err
        [line] = result.err.splitlines()
        assert line.startswith(f"warning: {copy} is a damaged copy of servers.json")
        assert f"move it back to {servers_file}, or delete it" in line


def test_deleted_copy_ends_warnings(
    run_cli: RunCli, isolated_profile: AppPaths
) -> None:
    settings_file = isolated_profile.settings_file
    settings_file.parent.mkdir(parents=True)
    settings_file.write_text("[]")
    assert run_cli("settings", "show").code == 3
    copies = list(settings_file.parent.glob("settings.json.damaged-*"))
    assert len(copies) == 1
    assert "settings.json" in run_cli("settings", "show").err

    copies[0].unlink()
    result = run_cli("settings", "show")

    assert result.code == 0
    assert result.err == ""
