"""Bad-input checks shared by every project's suite: run a CLI where a mode-000 file cannot be read, and check the
one-line error contract (exit status 2, exactly one stderr line, no traceback).

Root reads mode-000 files, so ``run_unprivileged`` runs the command without root's capabilities (``setpriv``,
util-linux) when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess


def run_unprivileged(command: list[str], timeout: float = 600.0) -> subprocess.CompletedProcess:
    """``command`` in a child process that cannot bypass file permissions (as root: every capability dropped)."""
    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            raise RuntimeError("running as root without setpriv (util-linux): cannot drop the capability to read "
                               "mode-000 files")
        prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-all"]
    return subprocess.run(prefix + command, capture_output=True, text=True, timeout=timeout)


def one_line_error(done: subprocess.CompletedProcess, *fragments: str) -> str:
    """The stderr line of a run that failed by the contract; AssertionError otherwise."""
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2, (done.returncode, done.stderr[-2000:])
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr[-2000:]
    assert all(f in lines[0] for f in fragments), lines[0]
    return lines[0]
