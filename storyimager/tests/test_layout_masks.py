"""Storyboard layout, Target Frame Masking and the masked loss (spec A8)."""

import pytest
import torch

from storyimager.layout import StoryLayout, from_canvas, to_canvas
from storyimager.masking import canvas_mask, frame_mask, masked_mse, sample_masks, unet_input


def test_canvas_round_trip_puts_frames_left_to_right():
    frames = torch.randn(2, 5, 4, 3, 6)
    canvas = to_canvas(frames)
    assert canvas.shape == (2, 4, 3, 30)
    assert torch.equal(canvas[..., 12:18], frames[:, 2])
    assert torch.equal(from_canvas(canvas, 5), frames)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_level_tokens_regroup_per_frame(scale):
    lay = StoryLayout(frames=5, height=8, width=8, text_len=3)
    h, w = 8 // scale, 8 // scale
    frames = torch.randn(2, 5, 7, h, w)
    tokens = to_canvas(frames).flatten(2).transpose(1, 2)  # raster order, as the UNet flattens a level
    per_frame = lay.to_frames(tokens)
    assert per_frame.shape == (10, h * w, 7)
    assert torch.equal(per_frame, frames.flatten(3).transpose(2, 3).reshape(10, h * w, 7))
    assert torch.equal(lay.from_frames(per_frame), tokens)


def test_level_with_misaligned_frames_is_an_error():
    with pytest.raises(ValueError, match="divisible"):
        StoryLayout(frames=5, height=6, width=6, text_len=3).level(5 * 9 // 4)


def test_mask_semantics_per_mode():
    assert frame_mask("visualize", 5).tolist() == [1, 1, 1, 1, 1]
    assert frame_mask("continue", 5).tolist() == [0, 1, 1, 1, 1]
    assert frame_mask("complete", 5, [0, 2, 4]).tolist() == [0, 1, 0, 1, 0]
    for bad in ([], [0, 1, 2, 3, 4], [7]):
        with pytest.raises(ValueError):
            frame_mask("complete", 5, bad)
    with pytest.raises(ValueError):
        frame_mask("visualize", 5, [0])


def test_training_masks_mix_modes_and_never_drop_all_or_no_frames():
    masks = sample_masks(3000, 5, (1, 1, 1), torch.Generator().manual_seed(0))
    sums = masks.sum(1)
    assert ((sums >= 1) & (sums <= 5)).all()
    vis = (sums == 5).float().mean()
    cont = ((masks[:, 0] == 0) & (masks[:, 1:].sum(1) == 4)).float().mean()
    assert 0.30 < vis < 0.37 and 0.33 < cont < 0.43  # completion can also draw the continuation mask
    only = sample_masks(200, 5, (0, 0, 1), torch.Generator().manual_seed(1)).sum(1)
    assert ((only >= 1) & (only <= 4)).all()


def test_unet_input_channels_and_known_cells():
    z_t, z0 = torch.randn(1, 4, 2, 10), torch.randn(1, 4, 2, 10)
    mask = canvas_mask(torch.tensor([[0.0, 1, 1, 1, 0]]), 2, 2)
    x = unet_input(z_t, z0, mask, "masked_noise")
    assert x.shape == (1, 5, 2, 10)
    assert torch.equal(x[:, :4, :, :2], z0[..., :2]) and torch.equal(x[:, :4, :, 2:8], z_t[..., 2:8])
    assert x[:, 4].tolist() == mask[:, 0].tolist()
    y = unet_input(z_t, z0, mask, "inpainting")
    assert y.shape == (1, 9, 2, 10) and torch.equal(y[:, :4], z_t)
    assert torch.equal(y[:, 4:8, :, 2:8], torch.zeros(1, 4, 2, 6))


def test_loss_gives_zero_weight_to_given_frames():
    pred = torch.randn(2, 4, 2, 10, requires_grad=True)
    target = torch.randn(2, 4, 2, 10)
    mask = canvas_mask(torch.tensor([[0.0, 1, 1, 1, 1], [0, 1, 0, 1, 0]]), 2, 2)
    loss = masked_mse(pred, target, mask)
    loss.backward()
    assert torch.all(pred.grad[0, :, :, :2] == 0) and torch.all(pred.grad[1, :, :, 4:6] == 0)
    assert torch.all(pred.grad[0, :, :, 2:] != 0)
    m = mask.expand_as(pred).bool()
    assert torch.isclose(loss, ((pred - target)[m] ** 2).mean())
