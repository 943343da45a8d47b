"""StoryImager: the backbone with storyboard layout, Target Frame Masking, Frame-Story Cross Attention, the
Contextual Feature Extractor and AR-LDM's character tokens, fine-tuned with LoRA (spec A2).

Training objective (spec A2): with the story's frame latents tiled into the canvas Z_0, a timestep t, noise eps
and the frame mask M, the UNet sees ``unet_input(Z_t, Z_0, M)`` plus the K captions' CLIP states and the story
tokens, and predicts eps (or v, following the backbone's scheduler); the squared error is averaged over target
cells only (``loss_region: target``). Captions are replaced by "" with probability ``cond_dropout`` per story
(classifier-free guidance).

Ablation switches (defaults = the full model): ``fsca: false`` keeps only the frame branch of every
cross-attention (stock cross-attention per frame), ``cfe: false`` drops the Contextual Feature Extractor (no context
tokens, no prior), ``mask_input`` picks ``masked_noise`` or ``inpainting``.
"""

from __future__ import annotations

import torch
from torch import nn

from storyimager.attention import install
from storyimager.backbone import Backbone, add_characters, extend_positions, frame_latent_size, widen_conv_in
from storyimager.config import StoryImagerConfig
from storyimager.context import ContextualFeatureExtractor, PriorConvIn
from storyimager.layout import StoryLayout, from_canvas, to_canvas
from storyimager.masking import INPUTS, canvas_mask, masked_mse, unet_input

LORA_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]


def _row_mask_hook(rows: list[int], size: int):
    """A gradient hook that keeps only ``rows`` of a table (new tokens / positions train, the old ones stay)."""
    keep = torch.zeros(size, 1)
    keep[rows] = 1

    def hook(grad: torch.Tensor) -> torch.Tensor:
        return grad * keep.to(grad.device, grad.dtype)

    return hook


class StoryImager(nn.Module):
    """The full model; ``forward`` returns the training loss of a batch of stories."""

    def __init__(self, backbone: Backbone, config: StoryImagerConfig):
        super().__init__()
        from diffusers import DDPMScheduler

        self.config = config
        self.unet, self.vae, self.text_encoder = backbone.unet, backbone.vae, backbone.text_encoder
        self.tokenizer = backbone.tokenizer
        self.scheduler_config = backbone.scheduler_config
        self.noise_scheduler = DDPMScheduler.from_config(backbone.scheduler_config)
        self.vae.requires_grad_(False)
        self.text_encoder.requires_grad_(False)
        self.unet.requires_grad_(False)
        self.scale = float(self.vae.config.scaling_factor)
        latent = frame_latent_size(config.resolution, len(self.vae.config.block_out_channels),
                                   len(self.unet.config.block_out_channels))
        self.layout = StoryLayout(config.frames, latent, latent, config.max_length)
        new_tokens = add_characters(self.tokenizer, self.text_encoder, config.characters)
        new_positions = extend_positions(self.text_encoder, config.max_length)
        widen_conv_in(self.unet, 4 * INPUTS[config.mask_input] + 1)
        self.fsca = install(self.unet, self.layout, config.lora_rank, story_branch=config.fsca)
        if config.finetune == "lora":
            from peft import LoraConfig

            self.unet.add_adapter(LoraConfig(r=config.lora_rank, lora_alpha=config.lora_rank,
                                             init_lora_weights="gaussian", target_modules=LORA_TARGETS))
        else:
            self.unet.requires_grad_(True)
        if config.cfe and config.context_prior:
            self.unet.conv_in = PriorConvIn(self.unet.conv_in, self.layout)
        self.unet.conv_in.requires_grad_(True)
        for proc in self.fsca:
            proc.requires_grad_(True)
        dim = self.text_encoder.config.hidden_size
        self.cfe = ContextualFeatureExtractor(dim, config.frames, self.unet.config.block_out_channels[0],
                                              config.cfe_layers, config.cfe_heads, config.cfe_queries) \
            if config.cfe else None
        tokens = self.text_encoder.get_input_embeddings().weight
        if new_tokens:
            tokens.requires_grad_(True)
            tokens.register_hook(_row_mask_hook(new_tokens, tokens.shape[0]))
        positions = self.text_encoder.embeddings.position_embedding.weight
        if new_positions:
            positions.requires_grad_(True)
            rows = list(range(positions.shape[0] - new_positions, positions.shape[0]))
            positions.register_hook(_row_mask_hook(rows, positions.shape[0]))

    # ------------------------------------------------------------------ conditioning
    def encode_text(self, captions: list[list[str]]) -> tuple[torch.Tensor, torch.Tensor]:
        """B stories x K captions -> CLIP states [B, K, L, d] and pooled EOS states [B, K, d]."""
        b, k = len(captions), len(captions[0])
        flat = [c for story in captions for c in story]
        ids = self.tokenizer(flat, padding="max_length", max_length=self.config.max_length, truncation=True,
                             return_tensors="pt").input_ids.to(self.device)
        states = self.text_encoder(ids).last_hidden_state
        eos = (ids == self.tokenizer.eos_token_id).int().argmax(dim=1)
        pooled = states[torch.arange(ids.shape[0], device=ids.device), eos]
        return states.view(b, k, ids.shape[1], -1), pooled.view(b, k, -1)

    def condition(self, captions: list[list[str]], masks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Encoder states [B, K*L + P', d] (captions then story tokens) and the context prior [B, K, C0]; without
        the CFE (``cfe: false``) the captions' states alone and no prior."""
        states, pooled = self.encode_text(captions)
        b = states.shape[0]
        states = states.reshape(b, -1, states.shape[-1])
        if self.cfe is None:
            return states, None
        story, prior = self.cfe(pooled, masks.to(self.device))
        return torch.cat([states, story], dim=1), prior

    def predict(self, z_in: torch.Tensor, t: torch.Tensor, states: torch.Tensor, prior: torch.Tensor | None
                ) -> torch.Tensor:
        """UNet prediction on the canvas for encoder ``states`` and the CFE ``prior``."""
        self.layout.prior = prior if self.config.context_prior else None
        try:
            return self.unet(z_in, t, states).sample
        finally:
            self.layout.prior = None

    # ------------------------------------------------------------------ latents
    @property
    def device(self) -> torch.device:
        return self.unet.device

    @torch.no_grad()
    def encode_frames(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """[B, K, 3, R, R] in [-1, 1] -> latent canvas [B, 4, h, K*w] (VAE posterior sample x scaling factor)."""
        b, k = images.shape[:2]
        dist = self.vae.encode(images.flatten(0, 1).to(self.device)).latent_dist
        noise = torch.randn(dist.mean.shape, generator=generator).to(self.device)
        z = (dist.mean + dist.std * noise) * self.scale
        return to_canvas(z.view(b, k, *z.shape[1:]))

    @torch.no_grad()
    def decode_frames(self, canvas: torch.Tensor) -> torch.Tensor:
        """Latent canvas -> frames [B, K, 3, R, R] in [-1, 1], decoded one frame at a time."""
        z = from_canvas(canvas, self.layout.frames)
        b, k = z.shape[:2]
        x = self.vae.decode(z.flatten(0, 1) / self.scale).sample.clamp(-1, 1)
        return x.view(b, k, *x.shape[1:])

    # ------------------------------------------------------------------ training
    def forward(self, images: torch.Tensor, captions: list[list[str]], masks: torch.Tensor,
                generator: torch.Generator) -> torch.Tensor:
        """Loss of a batch: images [B, K, 3, R, R] in [-1, 1], captions B x K, frame masks [B, K] (1 = target)."""
        z0 = self.encode_frames(images, generator)
        b = z0.shape[0]
        noise = torch.randn(z0.shape, generator=generator).to(self.device)
        steps = self.noise_scheduler.config.num_train_timesteps
        t = torch.randint(0, steps, (b,), generator=generator).to(self.device)
        drop = torch.rand(b, generator=generator) < self.config.cond_dropout
        captions = [[""] * len(c) if d else list(c) for c, d in zip(captions, drop.tolist())]
        masks = masks.to(self.device)
        mask = canvas_mask(masks, self.layout.height, self.layout.width)
        z_t = self.noise_scheduler.add_noise(z0, noise, t)
        states, prior = self.condition(captions, masks)
        pred = self.predict(unet_input(z_t, z0, mask, self.config.mask_input), t, states, prior)
        if self.noise_scheduler.config.prediction_type == "v_prediction":
            target = self.noise_scheduler.get_velocity(z0, noise, t)
        else:
            target = noise
        region = mask if self.config.loss_region == "target" else torch.ones_like(mask)
        return masked_mse(pred, target, region)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        """The weights fine-tuning changes (LoRA, FSCA story branch and gates, conv_in, CFE, new token rows)."""
        return {n: p.detach().clone() for n, p in self.named_parameters() if p.requires_grad}

    def load_trainable_state(self, state: dict[str, torch.Tensor]) -> None:
        own = dict(self.named_parameters())
        missing = [n for n, p in own.items() if p.requires_grad and n not in state]
        unknown = [n for n in state if n not in own]
        if missing or unknown:
            raise KeyError(f"missing {missing[:3]}, unexpected {unknown[:3]}")
        with torch.no_grad():
            for n, v in state.items():
                if own[n].shape != v.shape:
                    raise KeyError(f"{n}: shape {tuple(v.shape)} does not fit {tuple(own[n].shape)}")
                own[n].copy_(v)
