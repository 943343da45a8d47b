"""Input encoders of DualVGR (paper Sec. III-A; ``model/Preprocessing.py`` of the official code).

- ``QuestionEncoder``: GloVe-initialised word embedding, w_l = tanh(Drop_.15(E q_l)) (300-d), then two
  separate BiLSTMs (300 -> 2 x 384) over the same packed words: one gives the per-token states U
  [B, L, 768] (zero at padded positions, padded to the stored question width), the other the sentence
  vector q = Drop_.18([h_fwd; h_bwd]) [B, 768].
- ``AppearanceEncoder``: per clip, a BiLSTM (2048 -> 2 x 384) over its 16 frame features with input
  tanh(Drop_.15(f)); a_n = Drop_.18([h_fwd; h_bwd]) -> A [B, N, 768]. ``bilstm_final_states`` evaluates
  the same ``nn.LSTM`` parameters as one input-projection matmul per direction over all 16 steps plus a 16-step
  recurrence (equal to ``nn.LSTM`` to float rounding, tested; ~1.5x faster to train on the CPU, where
  this LSTM is most of a training step).
The motion projection is a plain Linear(2048 -> 768) and lives in ``model.DualVGR``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence


def _last_states(h_n: torch.Tensor) -> torch.Tensor:
    """[2, batch, H] final states of a one-layer BiLSTM -> [batch, 2H] (forward first)."""
    return torch.cat([h_n[0], h_n[1]], dim=-1)


def bilstm_final_states(x: torch.Tensor, lstm: nn.LSTM) -> torch.Tensor:
    """[h_fwd; h_bwd] after a full pass of the one-layer bidirectional, time-major ``lstm`` over the batch-first
    sequences x [M, T, D] (PyTorch's gate order i, f, g, o; zero initial states) -> [M, 2H]."""
    hidden = lstm.hidden_size
    fwd = F.linear(x, lstm.weight_ih_l0, lstm.bias_ih_l0 + lstm.bias_hh_l0)  # every step's input gates at once
    bwd = F.linear(x, lstm.weight_ih_l0_reverse, lstm.bias_ih_l0_reverse + lstm.bias_hh_l0_reverse)
    steps = torch.stack([fwd, bwd.flip(1)]).permute(2, 0, 1, 3).contiguous().unbind(0)  # T x [2, M, 4H]
    w_hh = torch.stack([lstm.weight_hh_l0, lstm.weight_hh_l0_reverse]).transpose(1, 2)  # [2, H, 4H]
    h = c = x.new_zeros(2, x.size(0), hidden)
    for gates_in in steps:
        i, f, g, o = torch.baddbmm(gates_in, h, w_hh).unflatten(-1, (4, hidden)).unbind(-2)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    return torch.cat(h.unbind(0), dim=-1)


class QuestionEncoder(nn.Module):
    def __init__(self, vocab_size: int, word_dim: int = 300, module_dim: int = 768):
        super().__init__()
        self.embed = nn.Embedding(vocab_size, word_dim)
        self.word_dropout = nn.Dropout(0.15)
        self.token_lstm = nn.LSTM(word_dim, module_dim // 2, batch_first=True, bidirectional=True)
        self.sentence_lstm = nn.LSTM(word_dim, module_dim // 2, batch_first=True, bidirectional=True)
        self.sentence_dropout = nn.Dropout(0.18)

    def forward(self, question: torch.Tensor, length: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``question`` int [B, L], ``length`` [B] -> words [B, L, 300], tokens U [B, L, 768], sentence q [B, 768]."""
        words = torch.tanh(self.word_dropout(self.embed(question)))
        packed = pack_padded_sequence(words, length.cpu(), batch_first=True, enforce_sorted=False)
        tokens, _ = pad_packed_sequence(self.token_lstm(packed)[0], batch_first=True, total_length=question.size(1))
        _, (h_n, _) = self.sentence_lstm(packed)
        return words, tokens, self.sentence_dropout(_last_states(h_n))


class AppearanceEncoder(nn.Module):
    """``fused`` picks ``bilstm_final_states`` (default) or ``nn.LSTM``'s own kernel (the same function)."""

    def __init__(self, vision_dim: int = 2048, module_dim: int = 768, fused: bool = True):
        super().__init__()
        self.fused = fused
        self.input_dropout = nn.Dropout(0.15)
        self.lstm = nn.LSTM(vision_dim, module_dim // 2, bidirectional=True)
        self.output_dropout = nn.Dropout(0.18)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` [B, N, F, D] -> clip features A [B, N, 768]."""
        b, n, f, d = frames.shape
        x = torch.tanh(self.input_dropout(frames)).reshape(b * n, f, d)  # one sequence of F frames per clip
        states = bilstm_final_states(x, self.lstm) if self.fused else _last_states(self.lstm(x.transpose(0, 1))[1][0])
        return self.output_dropout(states).view(b, n, -1)
