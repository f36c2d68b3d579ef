"""Options that select exams or servers reject an empty or blank value.

An unset shell variable gives an empty value. Read as "option absent", it
would act on every exam or server, so each such option exits with code 2,
names itself and changes nothing. The deliveries wait for a server on a free
port where nothing listens, so they stay queued.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from eyer_desktop.core.exams import Exam
from eyer_desktop.core.paths import AppPaths
from tests.cli.conftest import RunCli
from tests.helpers.dcmtk import free_port
from tests.helpers.delivery_profile import (  # noqa: F401
    add_storage_server,
    copy_samples,
    outbox_rows,
    sample_library_fixture,
)

EXAM = "{exam}"
"""Placeholder for the exam id in the argument lists below."""

BLANK_OPTIONS = [
    ("outbox", "retry-now", "--exam", ""),
    ("outbox", "retry-now", "--exam", "  "),
    ("outbox", "retry-now", "--server", ""),
    ("outbox", "list", "--exam", ""),
    ("outbox", "list", "--server", " "),
    ("outbox", "retry", "--all-failed", "--server", ""),
    ("send", EXAM, "--to", ""),
    ("send", EXAM, "--to", "\t"),
]


@pytest.fixture(name="color_exam")
def color_exam_fixture(isolated_profile: AppPaths, sample_library: Path) -> Exam:
    """The color sample exam, two images, in the test profile's library."""
    return copy_samples(isolated_profile, sample_library)[0]


@pytest.fixture(name="down_key")
def down_key_fixture(run_cli: RunCli, color_exam: Exam) -> str:
    """A mirror server that is down, with the color exam waiting for it."""
    key = add_storage_server(run_cli, "Desligado", free_port())
    result = run_cli("send", color_exam.exam_id)
    assert result.code == 1, result.err
    return key


@pytest.mark.parametrize("arguments", BLANK_OPTIONS)
def test_blank_selection_rejected(
    run_cli: RunCli, color_exam: Exam, down_key: str, arguments: tuple[str, ...]
) -> None:
    before = outbox_rows(run_cli)
    command = [part.replace(EXAM, color_exam.exam_id) for part in arguments]
    option, value = arguments[-2:]

    result = run_cli(*command)

    assert result.code == 2
    assert result.out == ""
    assert result.err.startswith(f"error: {option} {value!r}: is empty or blank. ")
    assert result.err.count("\n") == 1, result.err
    assert f"or leave out {option}" in result.err
    assert outbox_rows(run_cli) == before
