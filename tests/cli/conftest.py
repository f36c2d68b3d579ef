"""Run the command line in-process against the test's own profile."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest

from eyer_desktop.cli import main


@dataclass
class CliResult:
    code: int
    out: str
    err: str


RunCli = Callable[..., CliResult]


@pytest.fixture
def run_cli(capsys: pytest.CaptureFixture[str]) -> RunCli:
    """Return a function that runs ``eyer-desktop ARGS`` and captures its output."""

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        try:
            code = main(list(args))
        except SystemExit as exit_:
            code = int(exit_.code or 0)
        captured = capsys.readouterr()
        return CliResult(code, captured.out, captured.err)

    return run
