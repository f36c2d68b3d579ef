"""Icons of the application, drawn for it as 24x24 SVG stroke icons.

The SVG files live in ``eyer_desktop/resources/icons/`` inside the package, so
they are installed with it; Qt's SVG image plugin (part of PySide6-Essentials)
renders them at any size.
"""

from __future__ import annotations

import functools
from importlib import resources
from pathlib import Path

from PySide6.QtGui import QIcon

ICONS_PACKAGE = "eyer_desktop"
ICONS_FOLDER = ("resources", "icons")


def icons_dir() -> Path:
    """Return the folder that contains the SVG icons."""
    root = resources.files(ICONS_PACKAGE).joinpath(*ICONS_FOLDER)
    return Path(str(root))


def icon_path(name: str) -> Path:
    """Return the SVG file of icon ``name``, e.g. ``"add"``.

    Raises:
        FileNotFoundError: No icon has that name.
    """
    path = icons_dir() / f"{name}.svg"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in icons_dir().glob("*.svg")))
        raise FileNotFoundError(f"No icon named {name!r} in {path.parent}: {known}")
    return path


@functools.cache
def icon(name: str) -> QIcon:
    """Return icon ``name`` as a QIcon, loaded once.

    Raises:
        FileNotFoundError: No icon has that name.
    """
    return QIcon(str(icon_path(name)))
