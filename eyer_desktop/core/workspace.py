"""A profile's folders and stores, shared by the command line and the GUI.

The stores are created on first use, so a command that needs only the settings
never opens the outbox, and a damaged server file does not stop
``settings show``. Pass one workspace into the objects that need it rather than
creating stores in many places.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from eyer_desktop.core.jsonstore import damaged_copies
from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.outbox import Outbox
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.servers import ServerList
from eyer_desktop.core.settings import AppSettings


@dataclass
class Workspace:
    """The profile the application works on."""

    paths: AppPaths
    _settings: AppSettings | None = field(default=None, init=False)
    _servers: ServerList | None = field(default=None, init=False)
    _library: ExamLibrary | None = field(default=None, init=False)
    _outbox: Outbox | None = field(default=None, init=False)

    @classmethod
    def open(cls, profile: Path | str | None = None) -> Workspace:
        """Return the workspace of ``profile``, the environment's, or the default."""
        return cls(paths=AppPaths.resolve(profile))

    @property
    def settings(self) -> AppSettings:
        if self._settings is None:
            self._settings = AppSettings.load(self.paths.settings_file)
        return self._settings

    def save_settings(self, settings: AppSettings) -> None:
        settings.save(self.paths.settings_file)
        self._settings = settings

    @property
    def servers(self) -> ServerList:
        if self._servers is None:
            self._servers = ServerList.load(self.paths.servers_file)
        return self._servers

    def save_servers(self) -> None:
        self.servers.save(self.paths.servers_file)

    @property
    def library(self) -> ExamLibrary:
        if self._library is None:
            self._library = ExamLibrary(self.paths.library_dir)
        return self._library

    @property
    def outbox(self) -> Outbox:
        if self._outbox is None:
            self.paths.data_dir.mkdir(parents=True, exist_ok=True)
            self._outbox = Outbox(self.paths.outbox_file)
        return self._outbox

    def damaged_config_files(self) -> list[tuple[Path, Path]]:
        """Return the damaged configuration files that were moved aside.

        Each entry is the damaged copy and the file it was moved from. Until the
        user repairs and restores a copy, or deletes it, the application runs on
        the defaults or on a newer file, so callers keep reporting the copies.
        """
        return [
            (copy, original)
            for original in (self.paths.servers_file, self.paths.settings_file)
            for copy in damaged_copies(original)
        ]

    def close(self) -> None:
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None
