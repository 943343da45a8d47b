"""``make standalone-<paper>``: the paper lifted out of the monorepo, as a user would take it.

Copies the paper's tracked files and ``common/`` (befa: and ``mvgcn/``) to a scratch folder, installs them into a
new virtualenv from the paper's ``requirements.txt`` (uv, with pip's package sources, as ``toxfile.py`` maps them),
and runs the paper's tests there; ``--quick`` runs only its CLI-contract test (what CI runs for every paper).
Exit status: that of pytest. Run with the tools environment's Python (``.venv-tools/bin/python``).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from toxfile import pip_options, read_pip_config, uv_environment

PAPERS = ("mvgcn", "ld4mrec", "befa", "galip", "denet", "storyimager", "dualvgr")
IMAGES = {"befa", "galip", "denet", "storyimager", "dualvgr"}  # install common[images], as tox.ini does


def copy_tracked(part: str, dest: Path) -> None:
    """The files under ``part`` that git tracks or would (working-tree versions), nothing ignored (caches, runs)."""
    files = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others",
                            "--exclude-standard", "--", part], check=True,
                           capture_output=True).stdout.decode().split("\0")
    for name in filter(None, files):
        target = dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, target)


def check(paper: str, quick: bool) -> int:
    parts = ["common", *(["mvgcn"] if paper == "befa" else []), paper]
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    env = {**uv_environment(pip_options(read_pip_config())), **os.environ}
    with tempfile.TemporaryDirectory(prefix=f"standalone-{paper}-") as tmp:
        work = Path(tmp)
        for part in parts:
            copy_tracked(part, work)
        start = time.perf_counter()
        python = work / ".venv" / "bin" / "python"
        subprocess.run([uv, "venv", "-q", "--python", "python3.11", str(work / ".venv")], check=True, env=env)
        common = f"{work / 'common'}[images]" if paper in IMAGES else str(work / "common")
        editable = [arg for part in parts[1:] for arg in ("-e", str(work / part))]
        subprocess.run([uv, "pip", "install", "-q", "--python", str(python), "-r",
                        str(work / paper / "requirements.txt"), "-e", common, *editable], check=True, env=env)
        print(f"standalone {paper}: {', '.join(parts)} copied to {work} and installed in "
              f"{time.perf_counter() - start:.0f} s")
        selection = ["-k", "cli_has_the_shared_verbs_and_flags"] if quick else []
        test_env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "", "PYTHONPYCACHEPREFIX": str(work / "pycache")}
        done = subprocess.run([str(python), "-m", "pytest", "-q", "-p", "no:cacheprovider", *selection, "tests"],
                              check=False, cwd=work / paper, env=test_env)
        return done.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("papers", nargs="+", choices=PAPERS)
    parser.add_argument("--quick", action="store_true", help="only the CLI-contract test of each paper")
    args = parser.parse_args()
    failed = [paper for paper in args.papers if check(paper, args.quick) != 0]
    print(f"standalone: {len(args.papers) - len(failed)}/{len(args.papers)} passed" +
          (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
