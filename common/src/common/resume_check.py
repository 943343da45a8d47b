"""The run contract's kill test, shared by every project's suite: a training CLI killed with SIGKILL mid-run and
continued with ``--resume`` ends where an uninterrupted run ends.

``kill_then_resume`` runs the command in a child process, kills it once its run folder holds the records of
``after`` epochs (or steps) and a checkpoint, so that the kill lands inside the next epoch, then runs it again
with ``--resume``.
``records`` reads back every ``metrics.jsonl`` of a run folder (a grid's runs included) without the timings,
the one part two identical runs do not share.
"""

from __future__ import annotations

import json
import signal
import subprocess
import tempfile
import time
from pathlib import Path


def _ready(run_dir: Path, after: int) -> bool:
    """``after`` records written, and a checkpoint to resume from."""
    records = sum(len(p.read_text().splitlines()) for p in run_dir.rglob("metrics.jsonl"))
    return records >= after and any(run_dir.rglob("last.pt"))


def kill_then_resume(command: list[str], run_dir: Path, after: int = 1, timeout: float = 600.0) -> None:
    """Start ``command`` (a ``<paper> train ...`` command line), SIGKILL it once ``run_dir`` holds ``after``
    ``metrics.jsonl`` records and a ``last.pt``, then run ``command --resume`` to its end. Fails when the first
    run ends before the kill or the resumed run fails (its stderr in the message)."""
    with tempfile.TemporaryFile("w+") as stderr:  # a file, not a pipe: a full pipe would stall the child
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr, text=True)
        deadline = time.monotonic() + timeout
        while not _ready(run_dir, after):
            if child.poll() is not None:
                stderr.seek(0)
                raise AssertionError(f"the run ended (status {child.returncode}) before it could be killed: "
                                     f"{stderr.read()[-2000:]}")
            if time.monotonic() > deadline:
                child.kill()
                raise AssertionError(f"no {after} metrics records in {run_dir} after {timeout:.0f} s")
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        child.wait()
    resumed = subprocess.run([*command, "--resume"], capture_output=True, text=True, timeout=timeout)
    if resumed.returncode != 0:
        raise AssertionError(f"--resume failed (status {resumed.returncode}): {resumed.stderr[-2000:]}")


def _untimed(value):
    if isinstance(value, dict):
        return {k: _untimed(v) for k, v in value.items() if not (k.endswith("_s") or k.endswith("seconds"))}
    return value


def records(run_dir: Path) -> dict[str, list[dict]]:
    """Every ``metrics.jsonl`` under ``run_dir`` (by path relative to it), each record without its timings."""
    return {str(p.relative_to(run_dir)): [_untimed(json.loads(line)) for line in p.read_text().splitlines()]
            for p in sorted(run_dir.rglob("metrics.jsonl"))}
