"""What every command needs: the profile's folders and its stores, loaded lazily."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

from eyer_desktop.core.library import ExamLibrary
from eyer_desktop.core.outbox import Outbox
from eyer_desktop.core.paths import AppPaths
from eyer_desktop.core.servers import ServerList
from eyer_desktop.core.settings import AppSettings


@dataclass
class CliContext:
    """The profile a command works on.

    The stores are read on first use, so a command that needs only the
    settings never opens the outbox, and a damaged server file does not stop
    ``settings show``.
    """

    paths: AppPaths
    _settings: AppSettings | None = field(default=None, init=False)
    _servers: ServerList | None = field(default=None, init=False)
    _library: ExamLibrary | None = field(default=None, init=False)
    _outbox: Outbox | None = field(default=None, init=False)

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> CliContext:
        return cls(paths=AppPaths.resolve(args.profile))

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

    def close(self) -> None:
        if self._outbox is not None:
            self._outbox.close()
            self._outbox = None
