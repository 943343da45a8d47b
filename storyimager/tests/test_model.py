"""Frame-Story Cross Attention, the model on the storyboard canvas and the sampler (spec A8)."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from storyimager.attention import FrameStoryAttnProcessor
from storyimager.layout import StoryLayout
from storyimager.masking import canvas_mask, frame_mask, unet_input
from storyimager.sampling import denoise_canvas, sample_story
from storyimager.train import build_model

CAPTIONS = ["pororo is jumping in the park.", "loopy is sitting in the snow.", "eddy is standing at night.",
            "crong is jumping at the beach.", "poby is sitting in the house."]


def _layer(seed=0):
    torch.manual_seed(seed)
    attn = Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8)
    lay = StoryLayout(frames=5, height=4, width=4, text_len=3)
    return attn, lay, FrameStoryAttnProcessor(attn, lay)


def test_frame_branch_depends_only_on_its_own_caption():
    attn, lay, proc = _layer()
    hidden = torch.randn(2, 4 * 20, 16)
    states = torch.randn(2, 5 * 3 + 6, 12, requires_grad=True)
    out = proc(attn, hidden, states)
    frame2 = lay.to_frames(out).view(2, 5, 16, 16)[:, 2]
    (grad,) = torch.autograd.grad(frame2.sum(), states)
    per_caption = grad[:, :15].abs().sum(-1).view(2, 5, 3).sum(-1)
    assert torch.all(per_caption[:, 2] > 0)
    assert torch.all(per_caption[:, [0, 1, 3, 4]] == 0)
    assert torch.all(grad[:, 15:] == 0)  # gamma = 0: the story branch is off at initialisation
    with torch.no_grad():
        proc.gamma.fill_(0.5)
    out = proc(attn, hidden, states)
    (grad,) = torch.autograd.grad(lay.to_frames(out).view(2, 5, 16, 16)[:, 2].sum(), states)
    assert torch.all(grad.abs().sum(-1) > 0)  # the story branch sees every caption token and every context token


def test_gated_off_layer_equals_stock_attention_run_per_frame():
    attn, lay, proc = _layer(1)
    hidden = torch.randn(2, 4 * 20, 16)
    captions = torch.randn(2, 5, 3, 12)
    states = torch.cat([captions.flatten(1, 2), torch.randn(2, 6, 12)], dim=1)
    ours = proc(attn, hidden, states)
    stock = AttnProcessor2_0()(attn, lay.to_frames(hidden), captions.flatten(0, 1))
    assert torch.allclose(ours, lay.from_frames(stock), atol=1e-6)


def test_lora_mode_trains_adapters_gates_and_cfe_only(config):
    model = build_model(config(finetune="lora", lora_rank=4))
    proc = model.fsca[0]
    assert proc.story_k.down.weight.shape == (4, 32) and torch.all(proc.story_k.up.weight == 0)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.endswith("processor.gamma") for n in names) and any(n.startswith("cfe.") for n in names)
    assert any(n.endswith("processor.story_v.up.weight") for n in names)
    assert any(n.endswith("attn2.to_k.lora_B.default.weight") for n in names)
    assert not any(n.endswith("attn2.to_k.base_layer.weight") or n.startswith(("vae.", "text_encoder.encoder"))
                   for n in names)
    assert "unet.conv_in.conv.weight" in names


def test_shapes_at_every_unet_level_on_the_canvas(config):
    model = build_model(config(finetune="lora"))
    seen = []
    lay = model.layout
    original = lay.to_frames

    def spy(tokens):
        seen.append((tokens.shape[1], lay.level(tokens.shape[1])))
        return original(tokens)

    lay.to_frames = spy
    masks = torch.ones(2, 5)
    states, prior = model.condition([CAPTIONS, CAPTIONS], masks)
    z = torch.randn(2, 5, 8, 40)
    out = model.predict(z, torch.tensor([10, 500]), states, prior)
    del lay.to_frames
    assert out.shape == (2, 4, 8, 40)
    assert states.shape == (2, 5 * 24 + 5 + 4, 32) and prior.shape == (2, 5, 32)
    # the tiny UNet cross-attends at its first level (1 down + 2 up layers: 8 x 40 tokens on the canvas, 8 x 8 per
    # frame) and in its mid block (4 x 20 tokens, 4 x 4 per frame)
    assert sorted(seen) == [(80, (4, 4))] + [(320, (8, 8))] * 3
    assert len(model.fsca) == 4


def test_pretrained_behaviour_kept_at_initialisation(config, backbone):
    """On a one-frame canvas the untrained model is exactly the pretrained UNet: the widened conv_in's new
    channels, the LoRA up-projections, the story gates and the context prior all start at zero."""
    from diffusers import UNet2DConditionModel

    model = build_model(config(finetune="lora"))
    stock = UNet2DConditionModel.from_pretrained(backbone / "unet")
    model.layout.frames = 1
    z = torch.randn(3, 4, 8, 8)
    states, prior = model.condition([[c] for c in CAPTIONS[:3]], torch.ones(3, 1))
    with torch.no_grad():
        ours = model.predict(torch.cat([z, torch.rand(3, 1, 8, 8)], 1), torch.tensor([300, 20, 900]), states, prior)
        theirs = stock(z, torch.tensor([300, 20, 900]), states[:, :24]).sample
    assert torch.allclose(ours, theirs, atol=1e-5)


def test_given_frames_carry_zero_loss_weight(config):
    model = build_model(config())
    gen = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    images = torch.rand(2, 5, 3, 16, 16) * 2 - 1
    masks = torch.tensor([[0.0, 1, 1, 1, 1], [0, 1, 0, 1, 0]])
    base = model(images, [CAPTIONS] * 2, masks, gen())
    unet_forward = model.unet.forward

    def noisy_on_given(*args, **kwargs):
        out = unet_forward(*args, **kwargs)
        given = 1 - torch.nn.functional.interpolate(masks[:, None, None, :], size=(8, 5)).repeat_interleave(8, -1)
        out.sample = out.sample + 100 * given[:, :, :8, :40]
        return out

    model.unet.forward = noisy_on_given
    assert torch.allclose(model(images, [CAPTIONS] * 2, masks, gen()), base)
    model.unet.forward = unet_forward
    assert not torch.allclose(model(images, [CAPTIONS] * 2, 1 - masks, gen()), base)


@pytest.mark.parametrize("kind", ["masked_noise", "inpainting"])
def test_given_latents_stay_where_the_masking_strategy_puts_them(config, kind):
    """Read from the DDIM loop, before the decoder and the output overwrite: at every step the UNet input holds the
    given frames' clean latents z0 (``masked_noise``: in the latent channels; ``inpainting``: in the z0 channels,
    zero on targets), and the final canvas holds z0 exactly on the given cells and new latents on the targets."""
    model = build_model(config(mask_input=kind)).eval()
    lay = model.layout
    given = torch.rand(2, 5, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    z0 = model.encode_frames(given, torch.Generator().manual_seed(2))
    inputs = []
    model.unet.register_forward_pre_hook(lambda m, args: inputs.append(args[0].clone()))
    z0_channels = slice(0, 4) if kind == "masked_noise" else slice(4, 8)
    for mode, idx in (("continue", None), ("complete", [0, 2, 4])):
        masks = frame_mask(mode, 5, idx).expand(2, -1)
        inputs.clear()
        z = denoise_canvas(model, [CAPTIONS] * 2, masks, z0, steps=3, guidance=2.0,
                           generator=torch.Generator().manual_seed(0))
        keep = (canvas_mask(masks, lay.height, lay.width) == 0).expand_as(z0)
        assert torch.equal(z[keep], z0[keep])
        assert not torch.isclose(z[~keep], z0[~keep]).any()
        assert len(inputs) == 3
        for x in inputs:  # the CFG-doubled batch: the same canvas twice
            seen, both = x[:, z0_channels], torch.cat([keep, keep])
            assert torch.equal(seen[both], torch.cat([z0, z0])[both])
            if kind == "inpainting":
                assert torch.all(seen[~both] == 0)


@pytest.mark.parametrize("kind", ["masked_noise", "inpainting"])
def test_changing_a_given_frame_changes_the_generated_neighbours(config, kind):
    """Same seed and captions, one given frame replaced: every generated target frame changes, in continuation
    (frame 1 replaced) and completion (frames 1, 3, 5 given, frame 3 replaced: its neighbours 2 and 4 change). The
    model is the untrained one (random tiny UNet, zero-initialised new channels and gates): the given frames reach
    the targets through the canvas itself (``masked_noise``: clean given cells of the UNet's latent input;
    ``inpainting``: the re-noised given latents reset into the canvas after each step), spread by the UNet's
    convolutions and self-attention; no weight is perturbed. Sampling is deterministic (the same given frames give
    bit-equal targets), so any change is the given frame's; in the untrained ``inpainting`` model frames far from
    the replaced one move by ~1e-5, two orders above float32 rounding of the pixel values (~1e-7)."""
    model = build_model(config(mask_input=kind)).eval()
    gen = torch.Generator().manual_seed(1)
    given = torch.rand(1, 5, 3, 16, 16, generator=gen) * 2 - 1
    for mode, idx, changed in (("continue", None, 0), ("complete", [0, 2, 4], 2)):
        other = given.clone()
        other[:, changed] = torch.rand(1, 3, 16, 16, generator=gen) * 2 - 1
        mask = frame_mask(mode, 5, idx)
        a, again, b = (sample_story(model, [CAPTIONS], mask[None], x, steps=3, guidance=2.0,
                                    generator=torch.Generator().manual_seed(0))[0] for x in (given, given, other))
        assert torch.equal(a, again)
        change = (a - b).abs().mean(dim=(1, 2, 3))
        assert torch.all(change[mask == 1] > 1e-6), (mode, change)


def _canvas_output(model, masks):
    """The UNet prediction of ``model`` on a fixed canvas, timestep and captions (eval mode)."""
    model.eval()
    gen = torch.Generator().manual_seed(4)
    z_t, z0 = torch.randn(2, 2, 4, 8, 40, generator=gen)
    x = unet_input(z_t, z0, canvas_mask(masks, 8, 8), model.config.mask_input)
    with torch.no_grad():
        states, prior = model.condition([CAPTIONS] * 2, masks)
        return model.predict(x, torch.tensor([100, 700]), states, prior)


def _names(model):
    return {n for n, _ in model.named_parameters()}


def test_fsca_off_removes_exactly_the_story_branch(config):
    """``fsca: false``: the parameters are the full model's minus every story branch (``story_k``, ``story_v``,
    ``gamma``), and the full model with its gates zeroed gives the ablated model's output (its story branch made
    non-trivial first: gates 0.5, seeded LoRA-Story up-projections), which it does not with the gates open."""
    full, ablated = build_model(config()), build_model(config(fsca=False))
    removed = _names(full) - _names(ablated)
    assert _names(ablated) < _names(full)
    assert all(n.split(".processor.")[1].split(".")[0] in ("story_k", "story_v", "gamma") for n in removed)
    assert len([n for n in removed if n.endswith("gamma")]) == len(full.fsca) == 4
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for proc in full.fsca:
            proc.gamma.fill_(0.5)
            for branch in (proc.story_k, proc.story_v):
                branch.up.weight.copy_(torch.randn(branch.up.weight.shape, generator=gen) * 0.1)
    missing, unexpected = ablated.load_state_dict(full.state_dict(), strict=False)
    assert not missing and set(unexpected) == removed
    masks = torch.tensor([[1.0, 1, 1, 1, 1], [0, 1, 0, 1, 1]])
    assert not torch.allclose(_canvas_output(full, masks), _canvas_output(ablated, masks), atol=1e-4)
    with torch.no_grad():
        for proc in full.fsca:
            proc.gamma.zero_()
    assert torch.allclose(_canvas_output(full, masks), _canvas_output(ablated, masks), atol=1e-6)


def test_cfe_off_removes_exactly_the_context_extractor(config):
    """``cfe: false``: the parameters are the full model's minus the CFE's (``cfe.*``), ``conv_in`` is the plain
    convolution (no prior added), and the full model whose CFE yields no context tokens and a zero prior gives
    the ablated model's output (story gates 0.5 and a seeded prior map first, so the CFE matters until removed)."""
    full, ablated = build_model(config()), build_model(config(cfe=False))
    plain = {n.replace("unet.conv_in.conv.", "unet.conv_in.") for n in _names(full)}
    assert plain - _names(ablated) == {n for n in _names(full) if n.startswith("cfe.")}
    assert _names(ablated) < plain and type(ablated.unet.conv_in).__name__ == "Conv2d" and ablated.cfe is None
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for proc in full.fsca:
            proc.gamma.fill_(0.5)
        full.cfe.prior.weight.copy_(torch.randn(full.cfe.prior.weight.shape, generator=gen))
    state = {k.replace("unet.conv_in.conv.", "unet.conv_in."): v for k, v in full.state_dict().items()}
    missing, unexpected = ablated.load_state_dict(state, strict=False)
    assert not missing and all(k.startswith("cfe.") for k in unexpected)
    masks = torch.tensor([[1.0, 1, 1, 1, 1], [0, 1, 0, 1, 1]])
    assert not torch.allclose(_canvas_output(full, masks), _canvas_output(ablated, masks), atol=1e-4)
    full.cfe.forward = lambda pooled, targets: (pooled[:, :0], torch.zeros(*targets.shape, 32))
    assert torch.allclose(_canvas_output(full, masks), _canvas_output(ablated, masks), atol=1e-6)


def test_inpainting_input_adds_exactly_the_clean_latent_channels(config):
    """``mask_input: inpainting`` vs ``masked_noise``: the same parameters, ``conv_in`` 9 input channels instead of
    5 (4 more for (1 - M) * z0); with those 4 channels' weights zero and every frame a target, the same output."""
    noise, inpaint = build_model(config()), build_model(config(mask_input="inpainting"))
    assert _names(noise) == _names(inpaint)
    shapes = {n: p.shape for n, p in noise.named_parameters()}
    differ = [n for n, p in inpaint.named_parameters() if p.shape != shapes[n]]
    assert differ == ["unet.conv_in.conv.weight"] and inpaint.unet.conv_in.conv.weight.shape[1] == 9
    state = noise.state_dict()
    w = state["unet.conv_in.conv.weight"]
    state["unet.conv_in.conv.weight"] = torch.cat([w[:, :4], torch.zeros_like(w[:, :4]), w[:, 4:]], dim=1)
    inpaint.load_state_dict(state)
    masks = torch.ones(2, 5)
    assert torch.allclose(_canvas_output(inpaint, masks), _canvas_output(noise, masks), atol=1e-6)


def test_classifier_free_guidance_doubles_the_batch(config):
    model = build_model(config()).eval()
    sizes = []
    model.unet.register_forward_pre_hook(lambda m, args: sizes.append(args[0].shape[0]))
    sample_story(model, [CAPTIONS] * 3, torch.ones(3, 5), steps=2, guidance=4.0)
    assert sizes == [6, 6]
    sizes.clear()
    sample_story(model, [CAPTIONS] * 3, torch.ones(3, 5), steps=2, guidance=1.0)
    assert sizes == [3, 3]


def test_sampling_is_seeded(config):
    model = build_model(config()).eval()
    a, b = (sample_story(model, [CAPTIONS], torch.ones(1, 5), steps=2, guidance=2.0,
                         generator=torch.Generator().manual_seed(5)) for _ in range(2))
    assert torch.equal(a, b) and a.shape == (1, 5, 3, 16, 16)
