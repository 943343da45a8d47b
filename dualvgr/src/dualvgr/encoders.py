"""Input encoders of DualVGR (paper Sec. III-A; ``model/Preprocessing.py`` of the official code).

- ``QuestionEncoder``: GloVe-initialised word embedding, w_l = tanh(Drop_.15(E q_l)) (300-d), then two
  separate BiLSTMs (300 -> 2 x 384) over the same packed words: one gives the per-token states U
  [B, L, 768] (zero at padded positions, padded to the stored question width), the other the sentence
  vector q = Drop_.18([h_fwd; h_bwd]) [B, 768].
- ``AppearanceEncoder``: per clip, a BiLSTM (2048 -> 2 x 384) over its 16 frame features with input
  tanh(Drop_.15(f)); a_n = Drop_.18([h_fwd; h_bwd]) -> A [B, N, 768]. The LSTM runs through
  ``nn.LSTM``'s own kernel (oneDNN on CPU, cuDNN on CUDA; ``lstm_path: nn``, the default) or through
  ``bilstm.bilstm_final_states`` (``fused``: the same parameters and function with a hand-written backward). This
  LSTM is most of a CPU training step; ``nn`` was measured faster on this project's CPU machine on 2026-12-07
  (README, Benchmark), ``fused`` on the one of 2026-12-02, so both stay and ``dualvgr bench --lstm nn fused``
  times them on yours.
  The frame features are inputs, never trained through.
The motion projection is a plain Linear(2048 -> 768) and lives in ``model.DualVGR``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from dualvgr.bilstm import bilstm_final_states


def _last_states(h_n: torch.Tensor) -> torch.Tensor:
    """[2, batch, H] final states of a one-layer BiLSTM -> [batch, 2H] (forward first)."""
    return torch.cat([h_n[0], h_n[1]], dim=-1)


def dropped_tanh_time_major(frames: torch.Tensor, p: float, training: bool) -> torch.Tensor:
    """tanh(Drop_p(f)) of the frame features [B, N, F, D], written time-major as [F, B*N, D] (one sequence per
    clip). The same function as ``tanh(nn.Dropout(p)(f))`` (keep with probability 1 - p, scale by 1 / (1 - p));
    the mask comes from ``torch.rand`` and the ops run in place (~2x faster on the CPU than bernoulli + new
    buffers for these 16.7M elements at batch 32)."""
    b, n, steps, d = frames.shape
    out = frames.new_empty(steps, b * n, d)
    as_frames = out.view(steps, b, n, d).permute(1, 2, 0, 3)
    if not training or p == 0:
        torch.tanh(frames, out=as_frames)
        return out
    torch.mul(frames, 1 / (1 - p), out=as_frames)
    return out.tanh_().masked_fill_(torch.rand(out.shape, device=out.device) >= 1 - p, 0)


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


LSTM_PATHS = ("nn", "fused")


class AppearanceEncoder(nn.Module):
    """``lstm_path`` picks ``nn.LSTM``'s own kernel or ``bilstm_final_states`` (the same function)."""

    def __init__(self, vision_dim: int = 2048, module_dim: int = 768, lstm_path: str = "nn"):
        super().__init__()
        if lstm_path not in LSTM_PATHS:
            raise ValueError(f"lstm_path must be one of {', '.join(LSTM_PATHS)}, got {lstm_path!r}")
        self.lstm_path = lstm_path
        self.input_dropout = nn.Dropout(0.15)
        self.lstm = nn.LSTM(vision_dim, module_dim // 2, bidirectional=True)
        self.output_dropout = nn.Dropout(0.18)

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``frames`` [B, N, F, D] -> clip features A [B, N, 768]."""
        x = dropped_tanh_time_major(frames, self.input_dropout.p, self.training)  # [F, B*N, D]
        fused = self.lstm_path == "fused"
        states = bilstm_final_states(x, self.lstm) if fused else _last_states(self.lstm(x)[1][0])
        return self.output_dropout(states).view(frames.size(0), frames.size(1), -1)
