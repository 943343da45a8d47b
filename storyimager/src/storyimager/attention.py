"""Frame-Story Cross Attention (FSCA), the processor of every UNet cross-attention (``attn2``) (spec A2).

The paper's figure (FS-CAM): one frozen cross-attention with two LoRA branches whose outputs are summed.

- frame branch (local fidelity): the tokens of frame k attend only to caption k's word states, through the
  layer's projections with their "LoRA Frame" adapters (peft's LoRA on ``to_q/to_k/to_v/to_out``); computed as
  one batched attention over B*K frames, so at initialisation it is exactly the pretrained model run per frame
  with its own prompt;
- story branch (global coherence): every canvas token attends to all captions' word states followed by the
  global context tokens of the Contextual Feature Extractor, through the frozen ``to_k``/``to_v`` plus this
  processor's own low-rank "LoRA Story" deltas (up-projections start at zero).

O = O_frame + gamma * O_story, then the layer's ``to_out``. gamma (a learnable scalar per layer, 0 at the start)
is our addition so that fine-tuning starts from the pretrained behaviour; the figure shows a plain sum.
The encoder states the UNet passes in are [B, K*L + P, d]: the K captions' tokens, then the P context tokens
(P = 0 without the Contextual Feature Extractor). The ablation ``fsca: false`` builds the processor without the
story branch (no ``story_k``, ``story_v``, ``gamma``): stock cross-attention run per frame on its own caption.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from storyimager.layout import StoryLayout


def _heads(x: torch.Tensor, heads: int) -> torch.Tensor:
    b, n, c = x.shape
    return x.view(b, n, heads, c // heads).transpose(1, 2)


def _merge(x: torch.Tensor) -> torch.Tensor:
    b, h, n, d = x.shape
    return x.transpose(1, 2).reshape(b, n, h * d)


class LowRank(nn.Module):
    """x -> up(down(x)) of rank r; ``up`` starts at zero (LoRA's initialisation, alpha = r)."""

    def __init__(self, d_in: int, d_out: int, rank: int):
        super().__init__()
        self.down = nn.Linear(d_in, rank, bias=False)
        self.up = nn.Linear(rank, d_out, bias=False)
        nn.init.normal_(self.down.weight, std=1.0 / rank)
        nn.init.zeros_(self.up.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class FrameStoryAttnProcessor(nn.Module):
    """Processor for one ``attn2``: frame branch + gamma * story branch (see module docstring)."""

    def __init__(self, attn: nn.Module, layout: StoryLayout, rank: int = 16, story_branch: bool = True):
        super().__init__()
        self.layout = layout
        self.story_branch = story_branch
        if story_branch:
            self.story_k = LowRank(attn.to_k.in_features, attn.to_k.out_features, rank)
            self.story_v = LowRank(attn.to_v.in_features, attn.to_v.out_features, rank)
            self.gamma = nn.Parameter(torch.zeros(()))

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is None or hidden_states.ndim != 3:
            raise ValueError("FrameStoryAttnProcessor serves cross-attention layers on [B, N, C] tokens")
        lay = self.layout
        b = hidden_states.shape[0]
        n_text = lay.frames * lay.text_len
        if encoder_hidden_states.shape[1] < n_text:
            raise ValueError(f"encoder states hold {encoder_hidden_states.shape[1]} tokens; expected "
                             f"{lay.frames} captions x {lay.text_len} tokens (then the context tokens)")
        story = encoder_hidden_states
        if attn.norm_cross:
            story = attn.norm_encoder_hidden_states(story)
        captions = story[:, :n_text].reshape(b * lay.frames, lay.text_len, -1)
        q = attn.to_q(hidden_states)
        qf = _heads(lay.to_frames(q), attn.heads)
        frame = F.scaled_dot_product_attention(qf, _heads(attn.to_k(captions), attn.heads),
                                               _heads(attn.to_v(captions), attn.heads))
        out = lay.from_frames(_merge(frame))
        if self.story_branch:
            k_story = _base(attn.to_k)(story) + self.story_k(story)
            v_story = _base(attn.to_v)(story) + self.story_v(story)
            story_out = F.scaled_dot_product_attention(_heads(q, attn.heads), _heads(k_story, attn.heads),
                                                       _heads(v_story, attn.heads))
            out = out + self.gamma * _merge(story_out)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def _base(linear: nn.Module) -> nn.Linear:
    """The plain (frozen) Linear under a peft LoRA wrapper, or the Linear itself (``finetune: full``)."""
    return getattr(linear, "base_layer", linear)


def install(unet: nn.Module, layout: StoryLayout, rank: int, story_branch: bool = True
            ) -> list[FrameStoryAttnProcessor]:
    """Give every cross-attention layer of ``unet`` its own FSCA processor (self-attention keeps the stock one);
    returns the new processors."""
    procs = {}
    made = []
    attentions = {name: mod for name, mod in unet.named_modules() if hasattr(mod, "set_processor")}
    for name in unet.attn_processors:
        attn = attentions[name.removesuffix(".processor")]
        if name.endswith("attn2.processor"):
            procs[name] = FrameStoryAttnProcessor(attn, layout, rank, story_branch)
            made.append(procs[name])
        else:
            procs[name] = attn.processor
    unet.set_attn_processor(procs)
    return made
