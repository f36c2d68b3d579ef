"""Fixtures shared by the whole suite.

Each test gets its own profile folder through ``EYER_DESKTOP_PROFILE``, so no
test reads or writes the real user's configuration. A watchdog ends the run
with every thread's traceback when one test hangs, for example on a modal
dialog that nobody answers, instead of letting CI wait for its time limit.
"""

from __future__ import annotations

import faulthandler
from collections.abc import Iterator
from pathlib import Path
from typing import TextIO

import pytest

from eyer_desktop.core.paths import PROFILE_ENV, AppPaths

# The slowest test takes about 30 s on a loaded 2-core machine.
HANG_TIMEOUT_S = 300
# pytest captures standard error while a test runs, and the watchdog ends the
# process before pytest could show it, so the tracebacks go to this file and
# scripts/run-tests prints it when the run fails.
HANG_LOG = Path(__file__).parents[1] / ".pytest_cache" / "hang-tracebacks.txt"


@pytest.fixture(scope="session")
def hang_log() -> Iterator[TextIO]:
    HANG_LOG.parent.mkdir(parents=True, exist_ok=True)
    with HANG_LOG.open("w", encoding="utf-8") as log:
        yield log


@pytest.fixture(autouse=True)
def hang_watchdog(request: pytest.FixtureRequest, hang_log: TextIO) -> Iterator[None]:
    hang_log.write(f"Running {request.node.nodeid}\n")
    hang_log.flush()
    faulthandler.dump_traceback_later(HANG_TIMEOUT_S, exit=True, file=hang_log)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.fixture(autouse=True)
def isolated_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppPaths]:
    profile = tmp_path / "profile"
    monkeypatch.setenv(PROFILE_ENV, str(profile))
    paths = AppPaths.for_profile(profile)
    yield paths
