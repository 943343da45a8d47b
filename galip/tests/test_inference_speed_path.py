"""The generator's inference fast path (no autograd: in-place element-wise ops, broadcast 2x resize) is bitwise the
plain forward, never touches its inputs, and leaves training (autograd, autocast) alone; ``galip.bench`` smoke test.

The CLIP fixture has the real ViT-B/32 sizes (GALIP ties its bridge widths to them); most tests use nf=8 to stay fast.
"""

from __future__ import annotations

import platform
import subprocess
import sys
import warnings

import pytest
import torch
import torch.nn.functional as F

from galip.bench import report, sampling_throughput, text_to_image_throughput
from galip.models import CLIPTextEncoder, DFBlock, GBlock, MBlock, NetG
from galip.models.blocks import _upsample_nearest
from galip.sample import generate

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # clip's pkg_resources deprecation warning
    from clip.model import CLIP


def _randomise_affines(model: torch.nn.Module, seed: int) -> None:
    """A fresh Affine is the identity; give gamma/beta real (text-dependent) values."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if ".linear2." in name:
                p.add_(torch.randn(p.shape, generator=gen) * 0.05)


def _netg(clip_model: CLIP, nf: int, mixed_precision: bool = False) -> NetG:
    torch.manual_seed(1)
    net = NetG(nf, 100, 512, 256, 3, clip_model, mixed_precision=mixed_precision).eval()
    _randomise_affines(net, 2)
    return net


@pytest.fixture(scope="module")
def small_netG(clip_model: CLIP) -> NetG:  # noqa: N802
    return _netg(clip_model, 8)


def _inputs(batch: int, seed: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(batch, 100, generator=gen), torch.randn(batch, 512, generator=gen)


@pytest.mark.parametrize("batch", [1, 2])
def test_fast_path_is_bitwise_the_autograd_forward(small_netG: NetG, batch: int) -> None:  # noqa: N803
    noise, sent = _inputs(batch)
    with torch.enable_grad():  # autograd on: the plain out-of-place ops (the training code path)
        ref = small_netG(noise, sent, eval=True).detach()
    noise0, sent0 = noise.clone(), sent.clone()
    with torch.inference_mode():
        fast_inference_mode = small_netG(noise, sent, eval=True)
    fast_generate = small_netG.generate(noise, sent)
    assert ref.shape == (batch, 3, 224, 224) and ref.abs().max() > 0.01
    assert torch.equal(fast_inference_mode, ref) and torch.equal(fast_generate, ref)
    assert torch.equal(noise, noise0) and torch.equal(sent, sent0)
    assert not fast_generate.requires_grad and not fast_generate.is_inference()


def test_sample_generate_returns_ordinary_tensors_that_accept_in_place_ops(small_netG: NetG, clip_model: CLIP,  # noqa: N803
                                                                           ) -> None:
    """``galip.sample.generate`` (text tokens -> images): no grad, not an inference tensor, so ``clamp_`` works; the
    same images as the autograd forward on the same sentence embeddings."""
    encoder = CLIPTextEncoder(clip_model).eval()
    tokens = torch.randint(1, 1000, (2, 77), generator=torch.Generator().manual_seed(6))
    noise, _ = _inputs(2)
    images = generate(small_netG, encoder, tokens, noise)
    assert not images.requires_grad and not images.is_inference()
    with torch.enable_grad():
        ref = small_netG(noise, encoder(tokens)[0].float(), eval=True).detach()
    assert torch.equal(images, ref)
    images.clamp_(-1, 1)
    assert images.abs().max() <= 1


def test_fast_path_is_bitwise_for_the_full_size_birds_generator(clip_model: CLIP) -> None:
    net = _netg(clip_model, 64)
    noise, sent = _inputs(1, seed=4)
    with torch.enable_grad():
        ref = net(noise, sent, eval=True).detach()
    assert torch.equal(net.generate(noise, sent), ref)


def test_fast_path_leaves_block_inputs_untouched() -> None:
    torch.manual_seed(5)
    blocks = [(GBlock(612, 16, 16, 16), 8), (GBlock(612, 16, 8, 16), 8), (GBlock(612, 16, 8, 12), 8),
              (MBlock(16, 8, 16, 612, 3, 1, 1), 7), (MBlock(16, 8, 12, 612, 3, 1, 1), 7), (DFBlock(612, 16), 7)]
    for block, size in blocks:
        _randomise_affines(block, 6)
        x, c = torch.randn(2, 16, size, size), torch.randn(2, 612)
        x0 = x.clone()
        ref = block(x, c)  # autograd on (parameters require grad)
        with torch.no_grad():
            out = block(x, c)
        assert torch.equal(x, x0), type(block).__name__
        assert torch.equal(out, ref.detach()), type(block).__name__


def test_broadcast_2x_resize_equals_nearest_interpolate() -> None:
    torch.manual_seed(7)
    x = torch.randn(2, 5, 7, 7)
    with torch.no_grad():
        for size in (14, 8, 13, 224):
            assert torch.equal(_upsample_nearest(x, size), F.interpolate(x, size=(size, size))), size
        cl = x.contiguous(memory_format=torch.channels_last)
        assert torch.equal(_upsample_nearest(cl, 14), F.interpolate(x, size=(14, 14)))


def test_training_autograd_and_autocast_are_unchanged(clip_model: CLIP) -> None:
    noise, sent = _inputs(2, seed=8)
    # fp32 training step: the in-place LeakyReLU of to_rgb (official) gives the out-of-place gradients
    net = _netg(clip_model, 8)
    grads = []
    for inplace in (True, False):
        net.to_rgb[0].inplace = inplace
        net.zero_grad()
        net(noise, sent).square().mean().backward()
        grads.append([p.grad.clone() for p in net.parameters() if p.requires_grad])
    net.to_rgb[0].inplace = True
    assert len(grads[0]) == 376 and all(torch.equal(a, b) for a, b in zip(*grads))
    # mixed precision (CPU autocast: bfloat16): the fast path matches the autograd path under autocast too
    amp = _netg(clip_model, 8, mixed_precision=True)
    ref = amp(noise, sent)
    ref.float().square().mean().backward()
    with torch.no_grad():
        fast = amp(noise, sent)
    assert ref.dtype == torch.bfloat16 and torch.equal(fast, ref.detach())


def test_sampling_throughput_reports_speed_and_memory(small_netG: NetG) -> None:  # noqa: N803
    res = sampling_throughput(small_netG, batch_size=2, n_batches=2, warmup=1, cond_dim=512, nz=100, device="cpu")
    assert res["images_per_s"] > 0 and res["s_per_batch"] >= res["s_per_batch_min"] > 0
    assert res["peak_rss_mib"] > 100 and res["batch_size"] == 2 and res["n_batches"] == 2
    assert res["threads"] == torch.get_num_threads() and res["device"] == "cpu"
    with pytest.raises(ValueError):
        sampling_throughput(small_netG, 0, 1, 0, 512, 100, "cpu")


def test_malloc_tuning_applies_on_glibc_linux() -> None:
    # process-wide setting: check it in a child process, so the test session keeps glibc's defaults
    code = "from galip.bench import tune_malloc_for_inference as t; print(t())"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert out[-1] == str(glibc)


def test_compiled_generator_gives_the_eager_images_within_float32_noise(small_netG: NetG) -> None:  # noqa: N803
    """``--compile`` (``compile_generator``: torch.compile, inductor): not bitwise, within 1e-5 relative."""
    import copy

    from torch._dynamo.utils import counters

    from galip.sample import compile_generator

    noise, sent = _inputs(2)
    eager = small_netG.generate(noise, sent)
    graphs = counters["stats"]["unique_graphs"]
    compiled = compile_generator(copy.deepcopy(small_netG)).generate(noise, sent)
    assert counters["stats"]["unique_graphs"] > graphs  # dynamo compiled the forward
    assert not compiled.requires_grad
    assert ((compiled - eager).abs().max() / eager.abs().max()).item() < 1e-5


def test_text_to_image_row_times_tokeniser_text_encoder_and_generator_and_comes_first(small_netG: NetG,  # noqa: N803
                                                                                        clip_model: CLIP,
                                                                                        monkeypatch) -> None:
    """The bench's first row is captions -> uint8 images: it runs the CLIP tokeniser and text encoder on the
    captions and the generator on their embeddings (each call counted); sampling only by default."""
    from common.data import text_image
    from galip.cli import parser

    encoder = CLIPTextEncoder(clip_model).eval()
    calls = {"tokenise": 0, "encode": 0}
    real_call = text_image.ClipTokenizer.__call__

    def counted(self, text):
        calls["tokenise"] += 1
        return real_call(self, text)

    monkeypatch.setattr(text_image.ClipTokenizer, "__call__", counted)
    encoder.register_forward_hook(lambda *_: calls.__setitem__("encode", calls["encode"] + 1))
    res = text_to_image_throughput(small_netG, encoder, batch_size=2, n_batches=2, warmup=1, nz=100, device="cpu")
    assert calls == {"tokenise": 2 * 3, "encode": 3}  # 2 captions x (1 warm-up + 2 timed batches)
    assert res["images_per_s"] > 0 and res["batch_size"] == 2 and res["threads"] == torch.get_num_threads()
    row = dict(res, peak_rss_mib=1.0)
    text = report({"device": "cpu", "threads": 2, "torch": "x", "text_to_image": [row], "sampling": [row],
                   "training": None}).splitlines()
    assert text[2].lstrip().startswith("text -> images") and text[3].lstrip().startswith("NetG.generate alone")
    compiled = report({"device": "cpu", "threads": 2, "torch": "x", "text_to_image": [row], "sampling": [row],
                       "text_to_image_compiled": [row], "training": None}).splitlines()
    assert compiled[4].lstrip().startswith("text -> images, NetG torch.compile")
    assert parser().parse_args(["bench"]).train_batch == 0
