"""Fixtures shared by the whole suite.

Each test gets its own profile folder through ``EYER_DESKTOP_PROFILE``, so no
test reads or writes the real user's configuration.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from eyer_desktop.core.paths import PROFILE_ENV, AppPaths


@pytest.fixture(autouse=True)
def isolated_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[AppPaths]:
    profile = tmp_path / "profile"
    monkeypatch.setenv(PROFILE_ENV, str(profile))
    paths = AppPaths.for_profile(profile)
    yield paths
