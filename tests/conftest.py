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

import pytest

from eyer_desktop.core.paths import PROFILE_ENV, AppPaths

# The slowest test takes about 30 s on a loaded 2-core machine.
HANG_TIMEOUT_S = 300


@pytest.fixture(autouse=True)
def hang_watchdog() -> Iterator[None]:
    faulthandler.dump_traceback_later(HANG_TIMEOUT_S, exit=True)
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
