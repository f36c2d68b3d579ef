"""The core and the command line must import without Qt.

They run on servers and in scripts where no Qt is wanted, and the GUI is only a
layer over them. A fresh interpreter imports every module of both packages and
reports which Qt modules ended up loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

IMPORT_EVERYTHING = """
import importlib, json, pkgutil, sys
import eyer_desktop.core, eyer_desktop.cli
names = []
for package in (eyer_desktop.core, eyer_desktop.cli):
    prefix = package.__name__ + "."
    for info in pkgutil.walk_packages(package.__path__, prefix):
        importlib.import_module(info.name)
        names.append(info.name)
qt_packages = ("PySide6", "shiboken6", "PyQt5", "PyQt6")
qt = sorted(m for m in sys.modules if m.split(".")[0] in qt_packages)
print(json.dumps({"modules": names, "qt": qt}))
"""


def test_core_and_cli_import_no_qt() -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_EVERYTHING],
        capture_output=True,
        text=True,
        check=True,
    )
    report = json.loads(result.stdout)

    assert "eyer_desktop.core.exams" in report["modules"]
    assert report["qt"] == []
