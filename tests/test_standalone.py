"""Each paper lifted out of the monorepo with common/ (befa: and mvgcn/) installs into a new virtualenv from its
requirements.txt and runs (its CLI-contract test; `make standalone-<paper>` runs the whole suite)."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"  # built by `make test`, which runs this suite


def test_every_paper_installs_and_runs_alone():
    papers = ["mvgcn", "ld4mrec", "befa", "galip", "denet", "storyimager", "dualvgr"]
    assert TOOLS_PYTHON.is_file(), "run through `make test` (it builds .venv-tools, with uv)"
    done = subprocess.run([str(TOOLS_PYTHON), str(ROOT / "tests" / "standalone_check.py"), "--quick", *papers],
                          capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "standalone: 7/7 passed" in done.stdout
