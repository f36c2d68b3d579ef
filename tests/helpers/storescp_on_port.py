"""dcmtk storescp started on a port chosen beforehand.

The fixtures of ``tests.helpers.dcmtk`` pick a free port when the server
starts. A test of a server that is down at first needs the opposite: a
server configured with a port on which nothing listens yet, and a storescp
started on that same port later.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.helpers.dcmtk import (
    DcmtkServer,
    _stop,
    _wait_until_listening,
    require_tool,
)


@contextmanager
def run_storescp_on_port(
    port: int, folder: Path, *, accept_jpeg: bool = True, ae_title: str = "STORESCP"
) -> Iterator[DcmtkServer]:
    """Run storescp on ``port`` of 127.0.0.1, writing received files to ``folder``.

    Raises:
        RuntimeError: storescp did not start listening, for example because
            another process took the port in the meantime.
    """
    executable = require_tool("storescp")
    folder.mkdir(parents=True, exist_ok=True)
    arguments = ["--aetitle", ae_title, "--output-directory", str(folder)]
    if accept_jpeg:
        arguments.append("+xa")
    log = folder.parent / f"{folder.name}-storescp.log"
    with log.open("ab") as output:
        process = subprocess.Popen(
            [executable, *arguments, str(port)],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    try:
        if not _wait_until_listening(process, port):
            raise RuntimeError(
                f"storescp did not start listening on port {port}: "
                f"{log.read_text(errors='replace')}"
            )
        yield DcmtkServer(process, port, ae_title, folder, log)
    finally:
        _stop(process)
