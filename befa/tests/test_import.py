"""The skeleton package installs beside the shared package and is honest about its status."""

import subprocess
from pathlib import Path

import befa
import common

REPO = Path(__file__).resolve().parents[2]


def test_package_imports_beside_common_and_declares_its_status():
    assert befa.__version__ and common.__version__
    assert befa.IMPLEMENTED is False


def test_make_reproduce_fails_with_one_line_while_not_implemented():
    run = subprocess.run(["make", "-C", str(REPO), "--no-print-directory", "reproduce-befa"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode != 0
    lines = (run.stdout + run.stderr).strip().splitlines()
    assert len(lines) == 1 and "befa is not implemented yet" in lines[0], lines
