"""Code shared by the benchmark scripts."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Sequence


def timed_process(command: Sequence[str]) -> float:
    """Run ``command`` and return its wall time in seconds.

    Raises:
        RuntimeError: The command exited with a status other than 0.
    """
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, check=False)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        output = (result.stdout + result.stderr).decode(errors="replace")
        raise RuntimeError(
            f"{command[0]} exited with status {result.returncode}: {output[-2000:]}"
        )
    return elapsed
