"""Frame-Story Cross Attention (FSCA), the processor of every UNet cross-attention (``attn2``) (spec A2).

The cross attention is decomposed into two branches that share the layer's queries:

- frame branch (local fidelity): the tokens of frame k attend only to caption k, through the layer's own
  (pretrained, LoRA-adapted) ``to_k``/``to_v``; computed as one batched attention over B*K frames, so at
  initialisation it is exactly the pretrained model run per frame with its own prompt;
- story branch (global coherence): every canvas token attends to the story tokens S of the Contextual Feature
  Extractor through new projections ``story_k``/``story_v`` (initialised as copies of ``to_k``/``to_v``).

O = O_frame + gamma * O_story, then the layer's ``to_out``; gamma is a learnable scalar per layer, initialised
to 0 so the fine-tuning starts from the pretrained behaviour (our choice: the paper's figure shows the two
branches summed; how it keeps the pretrained output at the start is not readable here).
The encoder states the UNet passes in are [B, K*L + P, d]: the K captions' tokens, then the P story tokens.
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


class FrameStoryAttnProcessor(nn.Module):
    """Processor for one ``attn2``: frame branch + gamma * story branch (see module docstring)."""

    def __init__(self, attn: nn.Module, layout: StoryLayout):
        super().__init__()
        self.layout = layout
        self.story_k = nn.Linear(attn.to_k.in_features, attn.to_k.out_features, bias=attn.to_k.bias is not None)
        self.story_v = nn.Linear(attn.to_v.in_features, attn.to_v.out_features, bias=attn.to_v.bias is not None)
        self.story_k.load_state_dict(_base(attn.to_k).state_dict())
        self.story_v.load_state_dict(_base(attn.to_v).state_dict())
        self.gamma = nn.Parameter(torch.zeros(()))

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is None or hidden_states.ndim != 3:
            raise ValueError("FrameStoryAttnProcessor serves cross-attention layers on [B, N, C] tokens")
        lay = self.layout
        b = hidden_states.shape[0]
        n_text = lay.frames * lay.text_len
        if encoder_hidden_states.shape[1] <= n_text:
            raise ValueError(f"encoder states hold {encoder_hidden_states.shape[1]} tokens; expected "
                             f"{lay.frames} captions x {lay.text_len} tokens followed by the story tokens")
        captions = encoder_hidden_states[:, :n_text].reshape(b * lay.frames, lay.text_len, -1)
        story = encoder_hidden_states[:, n_text:]
        if attn.norm_cross:
            captions, story = attn.norm_encoder_hidden_states(captions), attn.norm_encoder_hidden_states(story)
        q = attn.to_q(hidden_states)
        qf = _heads(lay.to_frames(q), attn.heads)
        frame = F.scaled_dot_product_attention(qf, _heads(attn.to_k(captions), attn.heads),
                                               _heads(attn.to_v(captions), attn.heads))
        out = lay.from_frames(_merge(frame))
        story_out = F.scaled_dot_product_attention(_heads(q, attn.heads), _heads(self.story_k(story), attn.heads),
                                                   _heads(self.story_v(story), attn.heads))
        out = out + self.gamma * _merge(story_out)
        out = attn.to_out[1](attn.to_out[0](out))
        if attn.residual_connection:
            out = out + hidden_states
        return out / attn.rescale_output_factor


def _base(linear: nn.Module) -> nn.Linear:
    """The plain Linear under a peft LoRA wrapper (or the Linear itself)."""
    return getattr(linear, "base_layer", linear)


def install(unet: nn.Module, layout: StoryLayout) -> list[FrameStoryAttnProcessor]:
    """Give every cross-attention layer of ``unet`` its own FSCA processor (self-attention keeps the stock one);
    returns the new processors."""
    procs = {}
    made = []
    attentions = {name: mod for name, mod in unet.named_modules() if hasattr(mod, "set_processor")}
    for name in unet.attn_processors:
        attn = attentions[name.removesuffix(".processor")]
        if name.endswith("attn2.processor"):
            procs[name] = FrameStoryAttnProcessor(attn, layout)
            made.append(procs[name])
        else:
            procs[name] = attn.processor
    unet.set_attn_processor(procs)
    return made
