"""Bad-input checks shared by every project's suite: run a CLI where a mode-000 file cannot be read, and check the
one-line error contract (exit status 2, exactly one stderr line, no traceback).

Root reads mode-000 files, so ``run_unprivileged`` runs the command without root's capabilities (``setpriv``,
util-linux) when the tests run as root.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

# the ways an MMRec interaction file can be unusable, and what the one-line error then says
INTERACTION_FILE_CASES = {"unreadable": "Permission denied", "directory": "found a directory",
                          "header only": "no interactions", "empty": "header lacks"}


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


def spoil_interaction_file(inter: Path, case: str) -> str:
    """Make the ``.inter`` file unusable as ``case`` (a key of ``INTERACTION_FILE_CASES``) says: mode 000, a directory
    in its place, only its header, or empty; returns what the error line must say."""
    if case == "unreadable":
        inter.chmod(0)
    elif case == "directory":
        inter.unlink()
        inter.mkdir()
    else:
        inter.write_text(inter.read_text().splitlines()[0] + "\n" if case == "header only" else "")
    return INTERACTION_FILE_CASES[case]


def check_refused_resume(command: list[str], run_dir: Path) -> None:
    """``command`` (a ``train`` command line naming ``run_dir``'s run) with ``--resume``, where ``run_dir`` holds no
    checkpoint: one line naming the folder, and the folder not created."""
    one_line_error(subprocess.run([*command, "--resume"], capture_output=True, text=True), str(run_dir),
                   "nothing to resume")
    assert not run_dir.exists()
