"""The import rules of .importlinter hold on this tree, and each contract fails when a forbidden import is added."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("common", "mvgcn", "ld4mrec", "befa", "galip", "denet", "storyimager", "dualvgr")


def _lint_imports(root: Path) -> subprocess.CompletedProcess:
    paths = ":".join(str(root / p / "src") for p in PACKAGES)
    lint = Path(sys.executable).with_name("lint-imports")
    return subprocess.run([str(lint), str(root / ".importlinter")], check=False, cwd=root, capture_output=True,
                          text=True, env={"PATH": "/usr/bin:/bin", "PYTHONPATH": paths}, timeout=300)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """A copy of the repository's sources and import rules."""
    root = tmp_path_factory.mktemp("tree")
    shutil.copy(ROOT / ".importlinter", root)
    for package in PACKAGES:
        shutil.copytree(ROOT / package / "src" / package, root / package / "src" / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return root


def test_this_tree_keeps_every_contract(tree):
    run = _lint_imports(tree)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "4 kept, 0 broken" in run.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("denet/src/denet/data.py", "import galip", "papers are independent"),
    ("galip/src/galip/data.py", "import befa", "papers are independent"),
    ("common/src/common/data/mmrec.py", "import mvgcn", "common imports no paper"),
    ("common/src/common/metrics/fid.py", "import common.fit", "common in layers"),
    ("galip/src/galip/nets.py", "import galip.train", "No import cycles"),
])
def test_a_forbidden_import_breaks_its_contract(tree, module, line, contract):
    path = tree / module
    original = path.read_text()
    try:
        path.write_text(original + f"\n{line}  # added by the test\n")
        run = _lint_imports(tree)
    finally:
        path.write_text(original)
    assert run.returncode != 0, run.stdout[-3000:]
    broken = run.stdout.split("Broken contracts")[-1]
    assert contract in broken, run.stdout[-3000:]
