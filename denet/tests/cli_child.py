"""``python tests/cli_child.py ARGS``: ``denet ARGS`` in a child process, with the evaluation's Frechet distance
losing its matrix square root as the ``fid_without_sqrtm`` fixture does in-process (the kill-and-resume test checks
the run's mechanics, not the FID value)."""

import sys

from conftest import fid_without_sqrtm_value

import denet.evaluate
from denet.cli import main

denet.evaluate.frechet_distance = fid_without_sqrtm_value
sys.exit(main())
