"""Frame-Story Cross Attention, the model on the storyboard canvas and the sampler (spec A8)."""

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from storyimager.attention import FrameStoryAttnProcessor
from storyimager.layout import StoryLayout
from storyimager.masking import frame_mask
from storyimager.sampling import sample_story
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
def test_given_frames_come_back_exactly(config, kind):
    model = build_model(config(mask_input=kind)).eval()
    given = torch.rand(2, 5, 3, 16, 16) * 2 - 1
    for mode, idx in (("continue", None), ("complete", [1, 3])):
        mask = frame_mask(mode, 5, idx)
        out = sample_story(model, [CAPTIONS] * 2, mask.expand(2, -1), given, steps=3, guidance=2.0,
                           generator=torch.Generator().manual_seed(0))
        assert out.shape == (2, 5, 3, 16, 16)
        keep = mask == 0
        assert torch.equal(out[:, keep], given[:, keep])
        assert not torch.equal(out[:, ~keep], given[:, ~keep])


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
