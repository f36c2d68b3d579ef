"""Output piped into a reader that stops early, as `| head` does."""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.samples import write_sample_exams


@pytest.mark.skipif(not hasattr(signal, "SIGPIPE"), reason="POSIX pipes")
def test_closed_pipe_ends_quietly(isolated_profile: AppPaths) -> None:
    library = ExamLibrary(isolated_profile.library_dir)
    for seed in range(4):
        write_sample_exams(library, size=64, seed=seed)
    process = subprocess.Popen(
        [sys.executable, "-m", "eyer_desktop", "exams", "list", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        bufsize=0,
    )
    assert process.stdout is not None
    assert process.stderr is not None
    process.stdout.read(10)
    process.stdout.close()
    errors = process.stderr.read().decode()
    process.stderr.close()
    process.wait(timeout=60)

    assert "Traceback" not in errors
    assert "BrokenPipeError" not in errors
    assert process.returncode in (0, 128 + signal.SIGPIPE)
