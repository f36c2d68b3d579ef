"""The command line starts without loading modules its command does not use.

Networking (pynetdicom), the keyring and the demo load only in the commands
that use them, so `convert`, `exams` and `settings` start sooner. A fresh
interpreter builds the parser and parses a command line, then reports which
of those modules were loaded.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

PARSE_ONLY = """
import json, sys
from eyer_desktop.cli import build_parser
build_parser().parse_args(sys.argv[1:])
watched = ("pynetdicom", "keyring", "eyer_desktop.core.sending",
           "eyer_desktop.core.demo", "eyer_desktop.core.net")
print(json.dumps(sorted(m for m in sys.modules if m.startswith(watched))))
"""


@pytest.mark.parametrize(
    "arguments",
    [
        ["convert", "some-exam", "--out", "out"],
        ["exams", "list"],
        ["servers", "list"],
        ["outbox", "list"],
        ["settings", "show"],
    ],
)
def test_parsing_loads_no_networking(arguments: list[str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", PARSE_ONLY, *arguments],
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(result.stdout) == []
