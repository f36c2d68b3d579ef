"""``eyer-desktop exams``: import checks, as scripts see them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from eyer_desktop.core.samples import write_sample_images
from tests.cli.conftest import CliResult, RunCli
from tests.helpers.delivery_profile import SAMPLE_SIZE


def import_with(run_cli: RunCli, folder: Path, *options: str) -> CliResult:
    [image] = write_sample_images(folder, 1, size=SAMPLE_SIZE)
    return run_cli(
        "exams", "import", str(image), "--family-name", "Souza",
        "--document", "12345", *options,
    )  # fmt: skip


def assert_one_line_error(result: CliResult, *fragments: str) -> None:
    assert result.err.startswith("error: ")
    assert result.err.count("\n") == 1, result.err
    for fragment in fragments:
        assert fragment in result.err


def exam_count(run_cli: RunCli) -> int:
    return len(run_cli("exams", "list").out.splitlines()) - 1


@pytest.mark.parametrize(
    ("options", "fragments"),
    [
        (("--birth-date", "0001-01-01"), ("--birth-date", "0001-01-01", "1870")),
        (("--birth-date", "1869-12-31"), ("--birth-date", "before 1870-01-01")),
        (
            ("--captured-at", "0999-03-10T10:00:00-03:00"),
            ("--captured-at", "before 1990-01-01"),
        ),
        (
            ("--captured-at", "1989-12-31T23:00:00+00:00"),
            ("--captured-at", "before 1990-01-01"),
        ),
        (
            ("--captured-at", "2999-03-10T10:00:00-03:00"),
            ("--captured-at", "more than one day in the future"),
        ),
    ],
)
def test_import_rejects_implausible_dates(
    run_cli: RunCli, tmp_path: Path, options: tuple[str, ...], fragments: list[str]
) -> None:
    result = import_with(run_cli, tmp_path, *options)

    assert result.code == 2
    assert_one_line_error(result, *fragments)
    assert exam_count(run_cli) == 0


def test_import_accepts_plausible_dates(run_cli: RunCli, tmp_path: Path) -> None:
    tomorrow = dt.datetime.now(dt.UTC) + dt.timedelta(hours=20)
    result = import_with(
        run_cli, tmp_path,
        "--birth-date", "1870-01-01",
        "--captured-at", tomorrow.isoformat(timespec="seconds"),
    )  # fmt: skip

    assert result.code == 0, result.err
    assert exam_count(run_cli) == 1


def test_import_rejects_deep_anamnesis(run_cli: RunCli, tmp_path: Path) -> None:
    result = import_with(run_cli, tmp_path, "--anamnesis", "[" * 100_000)

    assert result.code == 2
    assert_one_line_error(result, "--anamnesis", "is nested too deeply")
