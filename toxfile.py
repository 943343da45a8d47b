"""tox inline plugin: tox-uv installs every environment, and uv honours pip's package sources.

uv reads none of pip's configuration files. On a machine whose pip is set up with local indexes, a
find-links folder (e.g. a CPU wheel of torch) or a constraints file, uv would otherwise resolve against
PyPI alone: other versions, gigabytes of downloads. Before any environment is built, this hook reads
pip's effective configuration (`pip config list`, environment variables included) and mirrors it into
the UV_* variables that tox-uv passes to `uv pip install`. A UV_* variable the user set is kept as is;
a machine without pip configuration gets uv's defaults.
"""

from __future__ import annotations

import ast
import os
import subprocess
import sys

from tox.plugin import impl

# pip option -> (uv variable, separator uv expects between several values)
PIP_TO_UV = {
    "index-url": ("UV_DEFAULT_INDEX", " "),
    "extra-index-url": ("UV_EXTRA_INDEX_URL", " "),
    "find-links": ("UV_FIND_LINKS", ","),
    "constraint": ("UV_CONSTRAINT", " "),
    "trusted-host": ("UV_INSECURE_HOST", " "),
    "cert": ("SSL_CERT_FILE", " "),
    "timeout": ("UV_HTTP_TIMEOUT", " "),
    "default-timeout": ("UV_HTTP_TIMEOUT", " "),
}
# pip's precedence: environment variables over a command's section over [global]
SECTION_RANK = {"global": 0, "install": 1, ":env:": 2}


def pip_options(listing: str) -> dict[str, str]:
    """Each pip option's effective value in `pip config list` output (`section.key='v'`)."""
    best: dict[str, tuple[int, str]] = {}
    for line in listing.splitlines():
        name, sep, raw = line.partition("=")
        section, _, key = name.rpartition(".")
        if not sep or section not in SECTION_RANK:
            continue
        key = key.replace("_", "-")
        rank = SECTION_RANK[section]
        if key not in best or rank >= best[key][0]:
            best[key] = (rank, ast.literal_eval(raw))
    return {key: value for key, (_, value) in best.items()}


def uv_environment(options: dict[str, str]) -> dict[str, str]:
    """The UV_* variables that make `uv pip install` see the sources pip would see."""
    env: dict[str, str] = {}
    for key, value in options.items():
        if key in PIP_TO_UV:
            var, separator = PIP_TO_UV[key]
            env[var] = separator.join(value.split())
    if options.get("no-index", "").lower() in {"1", "true", "yes", "on"}:
        env["UV_NO_INDEX"] = "1"
    if {"UV_EXTRA_INDEX_URL", "UV_FIND_LINKS"} & env.keys():
        # pip takes the best version across all sources; uv's default stops at the first
        env["UV_INDEX_STRATEGY"] = "unsafe-best-match"
    return env


def read_pip_config() -> str:
    """`pip config list` of this interpreter's pip (empty when pip is missing or fails)."""
    try:
        done = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            check=False,
            capture_output=True,
            text=True,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return done.stdout if done.returncode == 0 else ""


@impl
def tox_add_core_config(core_conf, state) -> None:
    wanted = uv_environment(pip_options(read_pip_config()))
    mirrored = {k: v for k, v in wanted.items() if k not in os.environ}
    os.environ.update(mirrored)
    if mirrored:
        shown = ", ".join(f"{k}={v}" for k, v in sorted(mirrored.items()))
        print(f"toxfile: uv uses pip's sources: {shown}", file=sys.stderr)
