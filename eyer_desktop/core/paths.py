"""Folders where the application keeps its configuration, data, cache and logs.

By default these are the platform's per-user folders (platformdirs). A profile
folder, given with ``--profile DIR`` or the ``EYER_DESKTOP_PROFILE`` environment
variable, puts all four under one folder instead: tests and portable installs
use it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs

APP_NAME = "EyerDesktop"
APP_AUTHOR = "Phelcom"
PROFILE_ENV = "EYER_DESKTOP_PROFILE"


@dataclass(frozen=True)
class AppPaths:
    """The four folders of one profile."""

    config_dir: Path
    data_dir: Path
    cache_dir: Path
    log_dir: Path

    @property
    def servers_file(self) -> Path:
        return self.config_dir / "servers.json"

    @property
    def settings_file(self) -> Path:
        return self.config_dir / "settings.json"

    @property
    def library_dir(self) -> Path:
        return self.data_dir / "exams"

    @property
    def outbox_file(self) -> Path:
        return self.data_dir / "outbox.sqlite3"

    @classmethod
    def for_profile(cls, profile: Path) -> AppPaths:
        """Return the folders of a self-contained profile folder."""
        profile = profile.expanduser().absolute()
        return cls(
            config_dir=profile / "config",
            data_dir=profile / "data",
            cache_dir=profile / "cache",
            log_dir=profile / "logs",
        )

    @classmethod
    def default(cls) -> AppPaths:
        """Return the platform's per-user folders of this application."""
        dirs = platformdirs.PlatformDirs(APP_NAME, APP_AUTHOR)
        return cls(
            config_dir=Path(dirs.user_config_dir),
            data_dir=Path(dirs.user_data_dir),
            cache_dir=Path(dirs.user_cache_dir),
            log_dir=Path(dirs.user_log_dir),
        )

    @classmethod
    def resolve(cls, profile: Path | str | None = None) -> AppPaths:
        """Return the folders of a given profile, the environment's, or the default."""
        if profile is None:
            profile = os.environ.get(PROFILE_ENV) or None
        if profile is not None:
            return cls.for_profile(Path(profile))
        return cls.default()

    def ensure(self) -> None:
        """Create the folders that do not exist yet."""
        for folder in (self.config_dir, self.data_dir, self.cache_dir, self.log_dir):
            folder.mkdir(parents=True, exist_ok=True)
