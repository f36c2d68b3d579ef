"""Run the dicom3tools validators and collect their Error and Warning lines.

``dciodvfy`` checks one file against its IOD; ``dcentvfy`` checks that the
Patient, Study, Series and Equipment attributes agree across the files of a
study. Both write their findings to standard error, one per line, starting
with ``Error -`` or ``Warning -``.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pytest

DCIODVFY = shutil.which("dciodvfy")
DCENTVFY = shutil.which("dcentvfy")

requires_dicom3tools = pytest.mark.skipif(
    DCIODVFY is None or DCENTVFY is None,
    reason="dicom3tools (dciodvfy, dcentvfy) is not installed; "
    "install the Debian package dicom3tools",
)

# dciodvfy (2022) reports this on a Stereometric Relationship object although
# its Left and Right Image Sequences reference the instances that the
# Referenced Series Sequence lists, which meets the standard's condition.
SMR_REFERENCED_SERIES_FALSE_POSITIVE = (
    "Error - ReferencedSeriesSequence present but Instance does not reference "
    "Instances - attribute <ReferencedSeriesSequence>"
)


@dataclass(frozen=True)
class VerifierReport:
    """The findings of one validator run."""

    errors: list[str]
    warnings: list[str]
    output: str


def dciodvfy(path: Path) -> VerifierReport:
    """Validate one DICOM file against its IOD."""
    assert DCIODVFY is not None, "dciodvfy is not installed"
    return _run([DCIODVFY, str(path)])


def dcentvfy(paths: Iterable[Path]) -> VerifierReport:
    """Check that the entity attributes agree across the files of a study."""
    assert DCENTVFY is not None, "dcentvfy is not installed"
    return _run([DCENTVFY, *(str(path) for path in paths)])


def _run(command: list[str]) -> VerifierReport:
    completed = subprocess.run(
        command,
        check=False,
        capture_output=True,
        text=True,
        errors="replace",
        timeout=120,
    )
    output = completed.stdout + completed.stderr
    lines = [line.strip() for line in output.splitlines()]
    return VerifierReport(
        errors=[line for line in lines if line.startswith("Error -")],
        warnings=[line for line in lines if line.startswith("Warning -")],
        output=output,
    )
