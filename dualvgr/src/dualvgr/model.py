"""DualVGR (Wang, Bao, Xu, IEEE TMM 2021): encoders, T DualVGR units, MFB fusion, attention readout and the
open-ended answer decoder, with the official code's initialisation (``model/models.py``).

Shapes: B batch, N clips (graph nodes), L question width, d = 768 (``module_dim``), A answers.
Each unit t (its own weights): cue c_t = WordAttention(words, U); punishment s^A, s^M; four punished GATs
Z_A = GAT_A(A, s^A) (appearance-specific), Z_CA = GAT_CA(A, s^A) (appearance view of the common space),
Z_M = GAT_M(M, s^M), Z_CM = GAT_CM(M, s^M); view attention over [Z_CA, Z_A] and [Z_CM, Z_M]; residual
A <- A + A~, M <- M + M~. The common and specific GATs both read the unit input (official code).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from dualvgr.encoders import AppearanceEncoder, QuestionEncoder
from dualvgr.graph import PunishedGAT, QueryPunishment, ViewAttention, WordAttention


@dataclass
class UnitTrace:
    """Per-unit tensors the losses and the tests read: lists with one entry per unit."""

    specific_app: list[torch.Tensor] = field(default_factory=list)  # Z_A  [B, N, d]
    common_app: list[torch.Tensor] = field(default_factory=list)  # Z_CA
    specific_mot: list[torch.Tensor] = field(default_factory=list)  # Z_M
    common_mot: list[torch.Tensor] = field(default_factory=list)  # Z_CM
    punish_app: list[torch.Tensor] = field(default_factory=list)  # s^A [B, N, 1]
    punish_mot: list[torch.Tensor] = field(default_factory=list)  # s^M
    view_app: list[torch.Tensor] = field(default_factory=list)  # view weights [B, 2, N, 1]
    view_mot: list[torch.Tensor] = field(default_factory=list)
    word_attention: list[torch.Tensor] = field(default_factory=list)  # beta [B, L]


class DualVGRUnit(nn.Module):
    def __init__(self, word_dim: int = 300, module_dim: int = 768):
        super().__init__()
        self.word_attention = WordAttention(module_dim)
        self.punish_app = QueryPunishment(word_dim, module_dim)
        self.punish_mot = QueryPunishment(word_dim, module_dim)
        self.gat_app, self.gat_common_app = PunishedGAT(module_dim), PunishedGAT(module_dim)
        self.gat_mot, self.gat_common_mot = PunishedGAT(module_dim), PunishedGAT(module_dim)
        self.view_app, self.view_mot = ViewAttention(module_dim), ViewAttention(module_dim)

    def forward(self, app: torch.Tensor, mot: torch.Tensor, words: torch.Tensor, tokens: torch.Tensor,
                mask: torch.Tensor, trace: UnitTrace) -> tuple[torch.Tensor, torch.Tensor]:
        cue, beta = self.word_attention(words, tokens, mask)
        s_app, s_mot = self.punish_app(cue, app), self.punish_mot(cue, mot)
        z_app, z_capp = self.gat_app(app, s_app), self.gat_common_app(app, s_app)
        z_mot, z_cmot = self.gat_mot(mot, s_mot), self.gat_common_mot(mot, s_mot)
        fused_app, w_app = self.view_app(torch.stack([z_capp, z_app], dim=1))
        fused_mot, w_mot = self.view_mot(torch.stack([z_cmot, z_mot], dim=1))
        for name, value in (("specific_app", z_app), ("common_app", z_capp), ("specific_mot", z_mot),
                            ("common_mot", z_cmot), ("punish_app", s_app), ("punish_mot", s_mot),
                            ("view_app", w_app), ("view_mot", w_mot), ("word_attention", beta)):
            getattr(trace, name).append(value)
        return app + fused_app, mot + fused_mot


class MFB(nn.Module):
    """Multi-modal factorised bilinear pooling (official ``fusions.MFB`` with ELU in and out, no power/l2
    normalisation): V = ELU(W_o SumPool_k(ELU(W_0 A) * ELU(W_1 M))), 768 -> 2*256 -> pool k=2 -> 256 -> 768."""

    def __init__(self, dim: int = 768, mm_dim: int = 256, factor: int = 2, out_dim: int = 768):
        super().__init__()
        self.mm_dim, self.factor = mm_dim, factor
        self.linear0, self.linear1 = nn.Linear(dim, mm_dim * factor), nn.Linear(dim, mm_dim * factor)
        self.linear_out = nn.Linear(mm_dim, out_dim)

    def forward(self, app: torch.Tensor, mot: torch.Tensor) -> torch.Tensor:
        z = F.elu(self.linear0(app)) * F.elu(self.linear1(mot))
        z = z.view(*z.shape[:-1], self.mm_dim, self.factor).sum(dim=-1)
        return F.elu(self.linear_out(z))


class AttentionReadout(nn.Module):
    """Graph readout (official ``ContextSelfAttn``, not question-conditioned):
    rho = softmax_n(w^T ELU(W_v Drop_.15(V_n)) + b), v = sum_n rho_n Drop_.15(V_n) (it pools the dropped-out
    features, as the official code)."""

    def __init__(self, dim: int = 768):
        super().__init__()
        self.dropout = nn.Dropout(0.15)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        self.score = nn.Linear(dim, 1)

    def forward(self, nodes: torch.Tensor) -> torch.Tensor:
        nodes = self.dropout(nodes)
        rho = self.score(F.elu(self.v_proj(nodes))).softmax(dim=1)
        return (rho * nodes).sum(dim=1)


class OpenEndedHead(nn.Module):
    """[v; W_q q + b] (1536) -> Drop .15 -> Linear 768 -> ELU -> BatchNorm1d -> Drop .15 -> Linear A."""

    def __init__(self, dim: int, num_answers: int):
        super().__init__()
        self.question_proj = nn.Linear(dim, dim)
        self.classifier = nn.Sequential(nn.Dropout(0.15), nn.Linear(2 * dim, dim), nn.ELU(), nn.BatchNorm1d(dim),
                                        nn.Dropout(0.15), nn.Linear(dim, num_answers))

    def forward(self, sentence: torch.Tensor, video: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.cat([video, self.question_proj(sentence)], dim=1))


def init_official(model: nn.Module) -> None:
    """The official ``init_modules(..., 'xavier_uniform')`` pass: xavier_uniform (gain 1) on every Linear and
    LSTM weight (the LSTM's stacked [4H, in] matrices as a whole), zero biases; then each GAT's per-head
    equivalent; the word embedding U(-1, 1) (GloVe overwrites it in training when ``glove`` is on)."""
    for m in model.modules():
        if isinstance(m, nn.Linear):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LSTM):
            for name, p in m.named_parameters():
                (nn.init.zeros_ if "bias" in name else nn.init.xavier_uniform_)(p)
        elif isinstance(m, PunishedGAT):
            m.reset_parameters()
        elif isinstance(m, nn.Embedding):
            nn.init.uniform_(m.weight, -1.0, 1.0)


class DualVGR(nn.Module):
    def __init__(self, vocab_size: int, num_answers: int, unit_layers: int = 2, vision_dim: int = 2048,
                 module_dim: int = 768, word_dim: int = 300):
        super().__init__()
        if unit_layers < 1:
            raise ValueError(f"unit_layers must be >= 1, got {unit_layers}")
        self.question_encoder = QuestionEncoder(vocab_size, word_dim, module_dim)
        self.appearance_encoder = AppearanceEncoder(vision_dim, module_dim)
        self.motion_proj = nn.Linear(vision_dim, module_dim)
        self.units = nn.ModuleList(DualVGRUnit(word_dim, module_dim) for _ in range(unit_layers))
        self.fusion = MFB(module_dim, out_dim=module_dim)
        self.readout = AttentionReadout(module_dim)
        self.head = OpenEndedHead(module_dim, num_answers)
        init_official(self)

    def forward(self, appearance: torch.Tensor, motion: torch.Tensor, question: torch.Tensor,
                question_len: torch.Tensor) -> tuple[torch.Tensor, UnitTrace]:
        """appearance [B, N, 16, 2048], motion [B, N, 2048], question int [B, L], question_len [B] ->
        logits [B, A] and the per-unit trace."""
        words, tokens, sentence = self.question_encoder(question, question_len)
        mask = (torch.arange(question.size(1), device=question.device) < question_len.unsqueeze(1)).to(words.dtype)
        app, mot = self.appearance_encoder(appearance), self.motion_proj(motion)
        trace = UnitTrace()
        for unit in self.units:
            app, mot = unit(app, mot, words, tokens, mask, trace)
        video = self.readout(self.fusion(app, mot))
        return self.head(sentence, video), trace


def count_parameters(model: DualVGR) -> int:
    """Parameters excluding the word embedding and the last classifier layer (the spec's B3 count)."""
    excluded = {id(p) for p in (model.question_encoder.embed.weight, *model.head.classifier[-1].parameters())}
    return sum(p.numel() for p in model.parameters() if id(p) not in excluded)
