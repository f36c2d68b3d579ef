"""A folder in which nothing can be renamed, created or deleted, for a test.

Write permission does not bind root, so as root the folder gets the Linux
immutable attribute with ``chattr +i`` instead of a chmod. The test is
skipped where neither works, for example as root on a file system without
that attribute.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@contextmanager
def read_only_folder(folder: Path) -> Iterator[None]:
    """Make ``folder`` read-only inside the block, and writable again after it."""
    if not (hasattr(os, "geteuid") and os.geteuid() == 0):
        mode = folder.stat().st_mode
        folder.chmod(0o555)
        try:
            yield
        finally:
            folder.chmod(mode)
        return

    chattr = shutil.which("chattr")
    if chattr is None:
        pytest.skip("as root, a read-only folder needs chattr, which is missing")
    result = subprocess.run(
        [chattr, "+i", str(folder)], capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        pytest.skip(f"chattr +i failed on {folder}: {result.stderr.strip()}")
    try:
        yield
    finally:
        subprocess.run([chattr, "-i", str(folder)], check=True)
