"""Base recommenders, each with the BeFA adapter right after its modality projection.

Every model is an ``nn.Module`` built as ``Model(config: BeFAConfig, data: MMRecData)`` and offers:

- ``pre_epoch()``: per-epoch work (e.g. FREEDOM's degree-sensitive edge dropout); may do nothing;
- ``loss(users, positives, negatives) -> dict[str, Tensor]``: the base model's training loss on a BPR
  batch (MMRec's ``calculate_loss``), its parts plus ``"total"``;
- ``embeddings() -> (users [U, k], items [I, k])``: representations whose dot products are the
  full-ranking scores (MMRec's ``full_sort_predict``), computed in eval mode;
- ``adapters``: an ``nn.ModuleDict`` per modality, ``befa.adapter.adapters(...)`` (identities when
  ``config.adapter`` is off, which leaves the exact base model).
"""

from befa.models.bm3 import BM3
from befa.models.freedom import FREEDOM
from befa.models.lattice import LATTICE
from befa.models.lattice_befa import LatticeBeFA
from befa.models.lgmrec import LGMRec
from befa.models.mgcn import MGCNBase
from befa.models.vbpr import VBPR

MODELS = {"vbpr": VBPR, "lattice": LATTICE, "freedom": FREEDOM, "mgcn": MGCNBase, "lattice_befa": LatticeBeFA,
          "lgmrec": LGMRec, "bm3": BM3}
