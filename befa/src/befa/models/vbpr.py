"""VBPR (He & McAuley, AAAI'16) as MMRec implements it (``enoche/MMRec:src/models/vbpr.py``), plus BeFA.

Scores: the paper's predictor gamma_u.gamma_i + theta_u.(E f_i) without its bias terms, written as MMRec
does, x_ui = <gamma_u, [gamma_i || E f_i]>, with gamma_u in R^{2d} (``u_embedding``), gamma_i in R^d
(``i_embedding``) and E f_i = ``item_linear``(t_i ⊕ v_i), one Linear from the concatenated text and image
features (text first; frozen) to d.

Where the adapter sits: MMRec projects the concatenated features with a single Linear, so one BeFA adapter
named ``"content"`` is applied to that projection's output, before the concatenation with the ID
embedding: item_i = [gamma_i || BeFA(E f_i)]. With ``config.adapter`` off it is an identity and the model
is MMRec's VBPR exactly (same parameters, same initialisation order, same loss).

Loss (``calculate_loss`` with ``common/loss.py``): BPRLoss -mean log(1e-10 + sigmoid(x_ui - x_uj)) plus
``reg_weight`` * EmbLoss(u, i, j) = (||U||_F + ||I||_F + ||J||_F) / B over the batch's final embeddings
(Frobenius norms, not squared; B = batch rows).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn as nn

from befa.adapter import adapters
from befa.config import BeFAConfig
from common.data.mmrec import MMRecData


def mmrec_bpr_loss(pos_scores: torch.Tensor, neg_scores: torch.Tensor, gamma: float = 1e-10) -> torch.Tensor:
    """MMRec ``BPRLoss``: -mean log(gamma + sigmoid(pos - neg))."""
    return -torch.log(gamma + torch.sigmoid(pos_scores - neg_scores)).mean()


def mmrec_emb_loss(*embeddings: torch.Tensor) -> torch.Tensor:
    """MMRec ``EmbLoss`` (norm 2): the sum of the tensors' Frobenius norms over the last one's rows."""
    return sum(torch.linalg.vector_norm(e) for e in embeddings) / embeddings[-1].shape[0]


def content_features(data: MMRecData) -> torch.Tensor:
    """MMRec's ``item_raw_features``: cat(text, image) when both exist, else the one that does."""
    feats = [data.features[k] for k in ("text_feat", "image_feat") if k in data.features]
    if not feats:
        raise ValueError("VBPR needs text_feat and/or image_feat")
    return torch.tensor(np.concatenate(feats, axis=1), dtype=torch.float32)  # a copy, never the caller's array


class VBPR(nn.Module):
    """MMRec VBPR with one BeFA adapter (``"content"``) on the output of ``item_linear``."""

    def __init__(self, config: BeFAConfig, data: MMRecData) -> None:
        super().__init__()
        d = config.embedding_size
        self.reg_weight = config.reg_weight
        # MMRec's order of initialisation: xavier_uniform ID tables (plain Parameters, so the later
        # ``apply(xavier_normal_initialization)`` leaves them alone), then item_linear, re-initialised with
        # xavier_normal weight and zero bias.
        self.u_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_users, 2 * d)))
        self.i_embedding = nn.Parameter(nn.init.xavier_uniform_(torch.empty(data.n_items, d)))
        self.register_buffer("item_raw_features", content_features(data), persistent=False)
        self.item_linear = nn.Linear(self.item_raw_features.shape[1], d)
        nn.init.xavier_normal_(self.item_linear.weight)
        nn.init.zeros_(self.item_linear.bias)
        # built last so that the base parameters draw the same random numbers with the adapter on or off
        self.adapters = adapters(["content"], d, config.adapter, config.layer_times, config.dropout_rate)
        self.to(config.device)

    def pre_epoch(self) -> None:
        """Nothing to do per epoch."""

    def item_embeddings(self, items: torch.Tensor | None = None) -> torch.Tensor:
        """[gamma_i || BeFA(item_linear(t_i ⊕ v_i))] for ``items`` (all items when None)."""
        ids = self.i_embedding if items is None else self.i_embedding[items]
        raw = self.item_raw_features if items is None else self.item_raw_features[items]
        return torch.cat([ids, self.adapters["content"](self.item_linear(raw))], dim=-1)

    def loss(self, users: torch.Tensor, positives: torch.Tensor, negatives: torch.Tensor) -> dict[str, torch.Tensor]:
        """MMRec ``calculate_loss``; parts are the weighted terms, ``total`` their sum.

        Only the batch's items are projected (MMRec projects all items, then indexes: the same values).
        """
        u = self.u_embedding[users]
        items = self.item_embeddings(torch.cat([positives, negatives]))
        p, n = items[: positives.shape[0]], items[positives.shape[0]:]
        bpr = mmrec_bpr_loss((u * p).sum(1), (u * n).sum(1))
        reg = self.reg_weight * mmrec_emb_loss(u, p, n)
        return {"bpr": bpr, "reg": reg, "total": bpr + reg}

    def embeddings(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(users [U, 2d], items [I, 2d]): MMRec ``full_sort_predict`` scores are their dot products."""
        return self.u_embedding, self.item_embeddings()
