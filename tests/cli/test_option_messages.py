"""Error messages name the options and values the user typed."""

from __future__ import annotations

from pathlib import Path

import pytest

from eyer_desktop.core.samples import write_sample_images
from tests.cli.conftest import CliResult, RunCli
from tests.helpers.delivery_profile import SAMPLE_SIZE

STORAGE = ("servers", "add", "--name", "Arquivo", "--kind", "dicom-storage")
WEB = ("servers", "add", "--name", "N", "--kind", "dicomweb", "--url", "https://h/x")
STORAGE_OK = (*STORAGE, "--aet", "STORESCP", "--host", "127.0.0.1", "--port", "104")


def assert_one_line_error(result: CliResult, expected: str) -> None:
    assert result.code == 2
    assert result.err.count("\n") == 1, result.err
    assert result.err.startswith(f"error: {expected}"), result.err


@pytest.mark.parametrize(
    ("arguments", "expected"),
    [
        (
            (*STORAGE, "--aet", "S", "--port", "104"),
            "--host: is required for dicom-storage servers",
        ),
        (
            (*STORAGE, "--host", "127.0.0.1", "--port", "104"),
            "--aet: is required for dicom-storage servers",
        ),
        (
            ("servers", "add", "--name", "Nuvem", "--kind", "dicomweb"),
            "--url: is required for dicomweb servers",
        ),
        ((*STORAGE_OK, "--connect-timeout", "0"), "--connect-timeout 0.0: is not"),
        (
            (*STORAGE_OK, "--tls", "--tls-ca-file", "/nonexistent.pem"),
            "--tls-ca-file '/nonexistent.pem': does not exist",
        ),
        (
            (*STORAGE_OK, "--tls", "--tls-cert-file", "/"),
            "--tls-cert-file '/': is not a file",
        ),
        (
            (*WEB, "--ca-file", "/nonexistent.pem"),
            "--ca-file '/nonexistent.pem': does not exist",
        ),
    ],
)
def test_servers_add_names_option(
    run_cli: RunCli, arguments: tuple[str, ...], expected: str
) -> None:
    result = run_cli(*arguments)

    assert_one_line_error(result, expected)
    assert "XXX000" not in result.err
    assert "ARQ000" not in run_cli("servers", "list").out


def test_servers_edit_rejects_missing_file(run_cli: RunCli) -> None:
    key = run_cli(*STORAGE_OK).out.strip()

    result = run_cli("servers", "edit", key, "--tls-cert-file", "/nonexistent.pem")

    assert_one_line_error(result, "--tls-cert-file '/nonexistent.pem': does not")


def test_long_value_shortened(run_cli: RunCli) -> None:
    name = "a" * 1000
    arguments = [part if part != "Arquivo" else name for part in STORAGE_OK]

    result = run_cli(*arguments)

    assert_one_line_error(result, f"--name '{'a' * 100}…': ")
    assert len(result.err) < 300


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (("--diopter-right", "nan"), "--diopter-right nan: is not a number"),
        (("--diopter-left", "31"), "--diopter-left 31.0: is not between -30 and 30"),
        (("--family-name", "A^B"), "--family-name 'A^B': contains"),
    ],
)
def test_import_names_option(
    run_cli: RunCli, tmp_path: Path, extra: tuple[str, ...], expected: str
) -> None:
    [image] = write_sample_images(tmp_path, 1, size=SAMPLE_SIZE)

    result = run_cli(
        "exams", "import", str(image), "--family-name", "Souza",
        "--document", "123", *extra,
    )  # fmt: skip

    assert_one_line_error(result, expected)
    assert "null" not in result.err


def test_import_montage_hint_names_type(run_cli: RunCli, tmp_path: Path) -> None:
    [image] = write_sample_images(tmp_path, 1, size=SAMPLE_SIZE)

    result = run_cli(
        "exams", "import", f"{image}:R:montage", "--family-name", "Souza",
        "--document", "123",
    )  # fmt: skip

    assert result.code == 2
    assert "--type panoramic" in result.err
    assert "exam_type" not in result.err


def test_import_unknown_suffix_named(run_cli: RunCli, tmp_path: Path) -> None:
    [image] = write_sample_images(tmp_path, 1, size=SAMPLE_SIZE)

    result = run_cli(
        "exams", "import", f"{image}:X", "--family-name", "Souza", "--document", "1"
    )

    assert_one_line_error(result, f"FILE '{image}:X': ':X' is not a known suffix")
    assert ":R, :L or :montage" in result.err
