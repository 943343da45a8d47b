"""`make test` runs every tox environment, in parallel jobs that share the cores without oversubscribing them."""

from __future__ import annotations

import configparser
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _dry_run(*args: str) -> str:
    """The commands `make test` would run (make -n: nothing runs but the recursive make, itself dry)."""
    return subprocess.run(["make", "-n", "--no-print-directory", *args, "test"], cwd=ROOT, capture_output=True,
                          text=True, check=True).stdout


def test_make_test_runs_every_tox_environment_once():
    tox = configparser.ConfigParser()
    tox.read(ROOT / "tox.ini")
    envs = [e.strip() for e in tox["tox"]["env_list"].split(",")]
    out = _dry_run()
    assert sorted(out.count(f"tox run -e {env}\n") for env in envs) == [1] * len(envs)
    assert out.count("tox run") == len(envs)


def test_jobs_split_the_cores_between_them():
    assert "OMP_NUM_THREADS=1 " in _dry_run("CORES=2") and "-j2 " in _dry_run("CORES=2")
    assert "OMP_NUM_THREADS=8 " in _dry_run("CORES=16")
    assert "OMP_NUM_THREADS=3 " in _dry_run("CORES=3", "TEST_JOBS=1") and "-j1 " in _dry_run("TEST_JOBS=1")
