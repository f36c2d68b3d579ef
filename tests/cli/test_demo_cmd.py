"""``eyer-desktop demo`` on the command line, where no display is available."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from pydicom import dcmread

from eyer_desktop.cli.demo_cmd import display_available
from eyer_desktop.core.demo import DEMO_FOLDER_PREFIX, RECEIVED_FOLDER
from tests.cli.conftest import RunCli


@pytest.fixture
def no_display(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No X11 or Wayland display, no offscreen Qt, temporary files in tmp_path."""
    for name in ("DISPLAY", "WAYLAND_DISPLAY", "QT_QPA_PLATFORM"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def demo_folders(root: Path) -> list[Path]:
    return sorted(root.glob(f"{DEMO_FOLDER_PREFIX}*"))


@pytest.mark.integration
@pytest.mark.usefixtures("no_display")
def test_demo_without_display_runs_headless(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("demo", "--size", "64")

    assert result.code == 0, result.err
    assert "No display was found" in result.out
    assert "24 images sent, 0 with warnings, 0 to retry, 0 failed" in result.out
    assert "12/12 delivered" in result.out
    assert "Worklist of " in result.out
    assert "Ana Lúcia Conceição" in result.out
    assert demo_folders(tmp_path) == []


@pytest.mark.integration
@pytest.mark.usefixtures("no_display")
def test_demo_keep_leaves_received_files(run_cli: RunCli, tmp_path: Path) -> None:
    result = run_cli("demo", "--headless", "--keep", "--size", "64")

    assert result.code == 0, result.err
    assert "No display was found" not in result.out
    [folder] = demo_folders(tmp_path)
    assert f"The demo profile was kept in {folder}" in result.out
    received = sorted((folder / RECEIVED_FOLDER).glob("*.dcm"))
    assert len(received) == 24
    assert dcmread(received[0]).Manufacturer == "Phelcom Technologies"
    assert (folder / "logs" / "eyer-desktop.log").is_file()


def test_demo_rejects_tiny_images(run_cli: RunCli) -> None:
    result = run_cli("demo", "--headless", "--size", "8")

    assert result.code == 2
    assert "--size" in result.err


@pytest.mark.parametrize(
    ("environ", "platform", "expected"),
    [
        ({}, "linux", False),
        ({"DISPLAY": ":0"}, "linux", True),
        ({"WAYLAND_DISPLAY": "wayland-0"}, "linux", True),
        ({"QT_QPA_PLATFORM": "offscreen"}, "linux", True),
        ({"QT_QPA_PLATFORM": "xcb"}, "linux", False),
        ({}, "win32", True),
        ({}, "darwin", True),
    ],
)
def test_display_available(
    environ: dict[str, str], platform: str, expected: bool
) -> None:
    assert display_available(environ, platform) is expected
