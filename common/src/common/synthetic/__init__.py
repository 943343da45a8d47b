"""Writers of small synthetic datasets in the real on-disk formats, with planted learnable structure.

Every writer is deterministic in its seed. Run ``python -m common.synthetic <format> --out DIR --seed N``.
"""
