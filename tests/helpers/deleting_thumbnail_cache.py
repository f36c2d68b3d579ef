"""A fake disk thumbnail cache that deletes each source image after storing it.

It reproduces an exam deleted while one of its thumbnails is decoded, right
after the thumbnail's file is written. No real deletion can be timed to land
at that moment.
"""

from __future__ import annotations

from pathlib import Path

from eyer_desktop.core.caches import DiskThumbnailCache


class SourceDeletingDiskCache(DiskThumbnailCache):
    """Deletes the source image of every thumbnail right after writing it."""

    def __init__(self, folder: Path, source: Path) -> None:
        super().__init__(folder)
        self.source = source
        self.written: Path | None = None
        """The last thumbnail file written."""

    def write(self, path: Path, data: bytes) -> None:
        super().write(path, data)
        self.written = path
        self.source.unlink()
