"""A paper lifted out of the monorepo with common/ (befa: and mvgcn/) installs into a new virtualenv from its
requirements.txt and runs its CLI-contract test; `make standalone-<paper>` runs the whole suite. CI checks the two
papers with the most to lose: befa (the declared mvgcn import) and denet (which imported galip until issue 21);
the same check of all seven took 110 s here on 2026-12-06."""

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOOLS_PYTHON = ROOT / ".venv-tools" / "bin" / "python"  # built by `make test`, which runs this suite


def test_befa_and_denet_install_and_run_alone():
    papers = ["befa", "denet"]
    assert TOOLS_PYTHON.is_file(), "run through `make test` (it builds .venv-tools, with uv)"
    done = subprocess.run([str(TOOLS_PYTHON), str(ROOT / "tests" / "standalone_check.py"), "--quick", *papers],
                          capture_output=True, text=True, timeout=1200, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "standalone: 2/2 passed" in done.stdout
