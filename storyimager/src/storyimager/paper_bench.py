"""``storyimager bench --paper-setting``: one story at the paper's scale, StoryImager's storyboard against AR-LDM's
frame-by-frame generation: seconds per story and peak memory, with RANDOM weights (speed only).

Shapes (``SD15``, written out here): Stable Diffusion 1.5's UNet (block_out_channels 320/640/1280/1280, 2 layers
per block, cross-attention 768, attention_head_dim 8, sample size 64), its VAE (128/256/512/512) and its CLIP
ViT-L/14 text encoder (12 layers of 768); AR-LDM's history encoder, BLIP-large as ``xichenpan/ARLDM:main.py``
builds it (``blip_feature_extractor(vit='large', image_size=224)``, run in 'multimodal' mode: a ViT-L/16 image
encoder and a 12-layer BERT-base text encoder cross-attending to it). The stand-in CLIP tokenizer has a small
vocabulary, so both rows lack CLIP's 49,408 x 768 token table (145 MiB).

- ``storyboard``: ``sample_story`` on StoryImager over that backbone (the config's FSCA, CFE, LoRA and mask
  input): the K frames as one latent canvas [1, 4, 64, 64 K] at 512 px, one UNet call per step on the
  CFG-doubled batch, then the VAE decode of the K frames.
- ``frame_by_frame``: AR-LDM's ``sample`` (visualization): CLIP on the K captions and the null caption and BLIP on
  the K source frames and the null frame, once; then for each frame a CFG-doubled DDIM sampling of one 64x64
  latent whose (stock SD) UNet cross-attends, masked, to the frame's caption and K history slots ((K + 1) x L
  tokens), the VAE decode of that frame, and BLIP on it (history for the next frames). Its modality and time
  embeddings (two additions) are left out.

Each row runs in a process of its own, so its peak memory is its own (CPU: peak RSS; CUDA:
``max_memory_allocated``). The parent lets one process run at a time and switches at every UNet call to the row
that has run less, so load from other programs slows both rows alike. Every sampling runs ``timed + 1`` DDIM
steps; the first UNet call of a row is its warm-up. Seconds per story = one-off (all but the UNet calls: text and
history encoding, VAE decode, the timed steps' scheduler updates) + ``sample_steps`` x samplings (1 or K) x the
mean time of the other UNet calls: an extrapolation, not a full 250-step run.
"""

from __future__ import annotations

import dataclasses
import multiprocessing as mp
import os
import resource
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from tqdm import tqdm

from .backbone import extend_positions, random_backbone, synthetic_words, tiny_tokenizer
from .config import StoryImagerConfig
from .model import StoryImager
from .sampling import sample_story

ROWS = ("storyboard", "frame_by_frame")


@dataclasses.dataclass(frozen=True)
class Shapes:
    """Constructor arguments of the random modules: ``SD15`` is the paper's scale; tests pass tiny ones."""

    unet: dict
    vae: dict
    text: dict
    blip_vision: dict
    blip_text: dict


SD15 = Shapes(
    unet=dict(block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=768,
              attention_head_dim=8, sample_size=64),
    vae=dict(block_out_channels=(128, 256, 512, 512), layers_per_block=2, sample_size=512,
             down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4),
    text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
              max_position_embeddings=77),
    blip_vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                     image_size=224, patch_size=16),
    blip_text=dict(hidden_size=768, intermediate_size=3072, num_hidden_layers=12, num_attention_heads=12,
                   encoder_hidden_size=1024, vocab_size=30524),
)


def _params(*modules: torch.nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def _storyboard(config: StoryImagerConfig, shapes: Shapes, folder: Path):
    """(UNet, story(steps, generator), samplings per story, parameters) of StoryImager on the random backbone."""
    tokenizer = tiny_tokenizer(folder, synthetic_words())
    model = StoryImager(random_backbone(shapes.unet, shapes.vae, shapes.text, tokenizer, config.seed), config)
    model = model.to(config.device).eval()
    captions = [[f"frame {k + 1} of the story" for k in range(config.frames)]]

    def story(steps: int, generator: torch.Generator) -> None:
        sample_story(model, captions, torch.ones(1, config.frames), steps=steps, guidance=config.guidance,
                     eta=config.eta, generator=generator)

    return model.unet, story, 1, _params(model)


def _frame_by_frame(config: StoryImagerConfig, shapes: Shapes, folder: Path):
    """(UNet, story(steps, generator), samplings per story, parameters) of AR-LDM's generation loop."""
    from diffusers import DDIMScheduler
    from transformers import BlipTextConfig, BlipVisionConfig, BlipVisionModel
    from transformers.models.blip.modeling_blip_text import BlipTextModel

    sd = random_backbone(shapes.unet, shapes.vae, shapes.text, tiny_tokenizer(folder, synthetic_words()), config.seed)
    extend_positions(sd.text_encoder, config.max_length)  # AR-LDM's 85 / 91 caption positions
    blip_image = BlipVisionModel(BlipVisionConfig(**shapes.blip_vision))
    blip_text = BlipTextModel(BlipTextConfig(**shapes.blip_text), add_pooling_layer=False)  # with cross-attention
    device = torch.device(config.device)
    modules = [sd.unet, sd.vae, sd.text_encoder, blip_image, blip_text]
    for m in modules:
        m.to(device).eval()
    k, length, res = config.frames, config.max_length, config.resolution
    side = res // 2 ** (len(sd.vae.config.block_out_channels) - 1)
    size = shapes.blip_vision["image_size"]

    def blip(frames: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        """BLIP 'multimodal': frames [n, 3, R, R] and token ids [n, L] -> [n, L, d]."""
        image = blip_image(pixel_values=F.interpolate(frames, size=(size, size), mode="bilinear")).last_hidden_state
        return blip_text(input_ids=ids, encoder_hidden_states=image, is_decoder=False).last_hidden_state

    @torch.inference_mode()
    def story(steps: int, generator: torch.Generator) -> None:
        clip_ids = torch.randint(0, len(sd.tokenizer), (k + 1, length), generator=generator).to(device)
        blip_ids = torch.randint(0, shapes.blip_text["vocab_size"], (k + 1, length), generator=generator).to(device)
        captions = sd.text_encoder(clip_ids).last_hidden_state  # the K captions, then the null caption
        sources = torch.rand(k, 3, res, res, generator=generator).to(device) * 2 - 1
        history = blip(torch.cat([sources, torch.zeros_like(sources[:1])]), blip_ids)  # K frames, the null frame
        slots, null = history[:k].clone(), torch.cat([captions[k], history[k].repeat(k, 1)])
        sched = DDIMScheduler.from_config(sd.scheduler_config, clip_sample=False)
        for i in range(k):
            context = torch.stack([null, torch.cat([captions[i], slots.flatten(0, 1)])])
            keep = torch.ones(2, (k + 1) * length, device=device)
            keep[:, (i + 1) * length:] = 0  # the history of frame i and later frames is masked
            sched.set_timesteps(steps)
            z = torch.randn(1, 4, side, side, generator=generator).to(device) * sched.init_noise_sigma
            for t in sched.timesteps:
                eps_u, eps_c = sd.unet(torch.cat([z, z]), t, context, encoder_attention_mask=keep).sample.chunk(2)
                z = sched.step(eps_u + config.guidance * (eps_c - eps_u), t, z, eta=config.eta).prev_sample
            frame = sd.vae.decode(z / sd.vae.config.scaling_factor).sample.clamp(-1, 1)
            slots[i] = blip(frame, blip_ids[i:i + 1])[0]

    return sd.unet, story, k, _params(*modules)


def _memory_mib(device: torch.device, peak: bool) -> float:
    if device.type == "cuda":
        return (torch.cuda.max_memory_allocated(device) if peak else torch.cuda.memory_allocated(device)) / 2**20
    if peak:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class _Turns:
    """This process runs only between the parent's go and its own next ``pause``; ``ran`` = seconds it ran."""

    def __init__(self, conn, device: torch.device):
        self.conn, self.device, self.ran, self.start = conn, device, 0.0, 0.0

    def wait(self) -> None:
        self.conn.recv()
        self.start = time.perf_counter()

    def stop(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elapsed = time.perf_counter() - self.start
        self.ran += elapsed
        return elapsed

    def pause(self, what: str) -> float:
        elapsed = self.stop()
        self.conn.send((what, elapsed))
        self.wait()
        return elapsed


def _worker(row: str, config: StoryImagerConfig, shapes: Shapes, timed: int, threads: int | None, conn) -> None:
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(config.device)
    with tempfile.TemporaryDirectory() as folder:
        unet, story, samplings, params = (_storyboard if row == "storyboard" else _frame_by_frame)(
            config, shapes, Path(folder))
    turns, calls = _Turns(conn, device), []

    def before(module, args):
        turns.pause("other")

    def after(module, args, output):
        calls.append(turns.pause("unet"))

    unet.register_forward_pre_hook(before)
    unet.register_forward_hook(after)
    built = _memory_mib(device, peak=False)
    conn.send(("ready", None))
    turns.wait()
    story(timed + 1, torch.Generator().manual_seed(config.seed))
    turns.stop()
    conn.send(("done", {"calls": calls, "one_off": turns.ran - sum(calls), "samplings": samplings,
                        "params": params, "built_mib": built, "peak_mib": _memory_mib(device, peak=True)}))


def _receive(conn, proc, row: str):
    try:
        return conn.recv()
    except EOFError:
        proc.join()
        raise RuntimeError(f"the {row} bench process ended early (exit code {proc.exitcode})") from None


def paper_bench(config: StoryImagerConfig, shapes: Shapes = SD15, timed: int = 2, threads: int | None = None
                ) -> dict[str, dict]:
    """{row: seconds per story (extrapolated), one-off, per UNet step, timed steps, memory, parameters}."""
    ctx = mp.get_context("spawn")
    conns, procs = {}, {}
    for row in ROWS:
        conns[row], child = ctx.Pipe()
        procs[row] = ctx.Process(target=_worker, args=(row, config, shapes, timed, threads, child))
        procs[row].start()
        child.close()
    out: dict[str, dict] = {}
    try:
        for row in ROWS:
            _receive(conns[row], procs[row], row)  # built
        ran = dict.fromkeys(ROWS, 0.0)
        bar = tqdm(total=(timed + 1) * (1 + config.frames), desc="UNet calls, both rows", unit="call", disable=None)
        while len(out) < len(ROWS):
            row = min((r for r in ROWS if r not in out), key=ran.get)
            conns[row].send("go")
            kind, value = _receive(conns[row], procs[row], row)
            if kind == "done":
                out[row] = value
                continue
            ran[row] += value
            if kind == "unet":
                bar.update()
        bar.close()
    finally:
        for proc in procs.values():
            proc.join(timeout=60)
            if proc.is_alive():
                proc.terminate()
    for r in out.values():
        steady = r["calls"][1:] or r["calls"]
        r["timed"], r["per_step"] = len(steady), sum(steady) / len(steady)
        r["seconds"] = r["one_off"] + config.sample_steps * r["samplings"] * r["per_step"]
    return out


def report(config: StoryImagerConfig, results: dict[str, dict], threads: int) -> str:
    """The two rows, the extrapolation rule and the ratio, as printed by ``storyimager bench --paper-setting``."""
    lines = [f"storyimager bench --paper-setting: {config.frames} frames at {config.resolution} px, DDIM "
             f"{config.sample_steps} steps, guidance {config.guidance}, device {config.device}, {threads} threads "
             f"[RANDOM weights: speed only]",
             f"  {'row':15s} {'s / story':>10s} {'one-off s':>10s} {'s / UNet step':>13s} {'samplings':>9s} "
             f"{'timed steps':>11s} {'peak MiB':>9s} {'built MiB':>9s} {'params':>8s}"]
    for row in ROWS:
        r = results[row]
        lines.append(f"  {row:15s} {r['seconds']:10.1f} {r['one_off']:10.1f} {r['per_step']:13.2f} "
                     f"{r['samplings']:9d} {r['timed']:11d} {r['peak_mib']:9.0f} {r['built_mib']:9.0f} "
                     f"{r['params'] / 1e6:7.0f}M")
    board, frames = results["storyboard"], results["frame_by_frame"]
    lines += [f"  s / story = one-off + {config.sample_steps} x samplings x s / UNet step: extrapolated from the timed "
              f"UNet steps of each row (its first UNet call, a warm-up, left out); the rows ran in alternation",
              f"  storyboard / frame_by_frame: {board['seconds'] / frames['seconds']:.2f}x the time per story, "
              f"{board['peak_mib'] / frames['peak_mib']:.2f}x the peak memory"]
    return "\n".join(lines)
