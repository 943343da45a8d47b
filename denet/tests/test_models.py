"""DE-Net modules against the official facts (spec text_to_image.md Sec. 3.3-3.4; tobran/DE-Net:code/models/).

Shapes, parameter counts, initialisation, the DEBlock combination, the cConv2d modulation (against an independent
per-sample reference) and the official state-dict key names. The official NetG only runs at 256 px (CWP flattens the
4x4 bottleneck to 256 values), so the small case shrinks ngf and the batch, not the image.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from denet.models import CAFF, CWP, DCBlock, DEBlock, NetC, NetD, NetG, cConv2d

STAGES = ["ext", *[f"down{k}" for k in range(1, 7)], *[f"yp{k}" for k in range(1, 7)], "cwp",
          *[f"up{k}" for k in range(1, 7)], "conv_img"]


def expected_shapes(b: int, ngf: int) -> dict[str, tuple[int, ...]]:
    """Spec Sec. 3.3 table (256 px)."""
    down = [2, 4, 8, 8, 8, 8]
    up = [8, 8, 8, 4, 2, 1]
    shapes = {"ext": (b, ngf, 256, 256), "cwp": (b, 1024), "conv_img": (b, 3, 256, 256)}
    for k in range(1, 7):
        shapes[f"down{k}"] = (b, ngf * down[k - 1], 256 >> k, 256 >> k)
        shapes[f"yp{k}"] = (b, ngf * up[k - 1], 4 << k, 4 << k)
        shapes[f"up{k}"] = (b, ngf * up[k - 1], 4 << k, 4 << k)
    return shapes


def perturb_(module: torch.nn.Module, std: float = 0.05) -> None:
    """Give the zero-initialised conditioning layers random weights, so the tests see non-trivial modulation."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "linear2" in name:
                p.normal_(0.0, std)


def run_with_hooks(ngf: int, b: int) -> tuple[NetG, dict[str, torch.Tensor], torch.Tensor]:
    torch.manual_seed(0)
    g = NetG(ngf, 100).eval()
    outs: dict[str, torch.Tensor] = {}
    for name in STAGES:
        def hook(_m, _i, o, name=name):
            outs[name] = o[0] if isinstance(o, tuple) else o  # UNetDown returns (h, skip)
        getattr(g, name).register_forward_hook(hook)
    with torch.no_grad():
        img = g(torch.rand(b, 3, 256, 256) * 2 - 1, torch.randn(b, 256))
    return g, outs, img


@pytest.mark.parametrize(("ngf", "b"), [(32, 2), (4, 1)])
def test_generator_stage_shapes_and_output_range(ngf, b):
    _, outs, img = run_with_hooks(ngf, b)
    expect = expected_shapes(b, ngf)
    assert {k: tuple(v.shape) for k, v in outs.items()} == expect
    assert img.shape == (b, 3, 256, 256) and img.abs().max() <= 1.0  # tanh


def test_discriminator_and_joint_head_shapes():
    torch.manual_seed(0)
    d, c = NetD(32).eval(), NetC(32).eval()
    assert d.block0.batchnorm is None and all(getattr(d, f"block{k}").batchnorm is not None for k in range(1, 6))
    x, s = torch.rand(2, 3, 256, 256), torch.randn(2, 256)
    with torch.no_grad():
        feats = d(x)
        assert feats.shape == (2, 256, 4, 4)
        assert c(feats, s).shape == (2, 1, 1, 1)
    small = NetD(4)
    with torch.no_grad():
        assert NetC(4)(small(x[:1]), s[:1]).shape == (1, 1, 1, 1)


@pytest.mark.parametrize(("imsize", "levels", "up_channels"),
                         [(32, 3, [16, 8, 4]), (64, 4, [32, 16, 8, 4]), (128, 5, [32, 32, 16, 8, 4])])
def test_smaller_imsize_drops_levels_and_keeps_the_4x4_bottleneck(imsize, levels, up_channels):
    torch.manual_seed(0)
    g, d = NetG(4, imsize=imsize).eval(), NetD(4, imsize).eval()
    assert g.levels == d.levels == levels and not hasattr(g, f"down{levels + 1}")
    x, s = torch.rand(2, 3, imsize, imsize) * 2 - 1, torch.randn(2, 256)
    with torch.no_grad():
        assert g(x, s).shape == x.shape
        assert d(x).shape == (2, 32, 4, 4)
    assert [getattr(g, f"up{k}").conv.out_channels for k in range(1, levels + 1)] == up_channels
    with pytest.raises(ValueError, match="imsize"):
        NetG(4, imsize=96)


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_parameter_counts_match_spec_and_state_dict_size():
    g = NetG(32, 100)
    assert n_params(g) == 18_755_667
    assert n_params(NetD(32)) == 2_788_736
    assert n_params(NetC(32)) == 295_936
    assert n_params(g.cwp) == 3_345_408  # spec: CWP ~3.35 M
    sd = g.state_dict()
    assert len(sd) == 210
    assert sum(k.endswith(("running_mean", "running_var", "num_batches_tracked")) for k in sd) == 18  # 6 BN x 3
    assert n_params(NetG(64)) == 51_698_195  # spec: 51.70 M
    assert n_params(NetD(64)) == 11_148_032  # 11.15 M
    assert n_params(NetC(64)) == 886_784  # 0.89 M


def test_official_state_dict_key_names():
    g, d, c = NetG(32).state_dict(), NetD(32).state_dict(), NetC(32).state_dict()
    for key in ["ext.weight", "ext.bias", "down1.conv.weight", "down1.bn.running_mean", "down6.bn.weight",
                "yp1.conv.weight", "yp6.conv.bias", "up1.conv.weight",
                "up1.CAFF.fc_gamma.linear1.weight", "up1.CAFF.fc_beta.linear2.bias",
                "up1.DCBlk.conv.weight", "up1.DCBlk.conv.bias", "up1.DCBlk.conv.scales.linear1.weight",
                "up1.DCBlk.conv.shifts.linear2.weight", "up1.DCBlk.conv_weight.weight", "up1.DCBlk.conv_bias.weight",
                "up6.fc.linear2.weight", "cwp.img_enc.conv1.weight", "cwp.img_enc.conv2.weight",
                "cwp.txt_enc.main.linear1.weight", "cwp.fuse.main.linear2.weight", "cwp.fc.linear1.weight",
                "conv_img.1.weight", "conv_img.1.bias"]:
        assert key in g, key
    assert g["up1.DCBlk.conv.weight"].shape == (8, 256, 3, 3)
    assert g["up6.DCBlk.conv.weight"].shape == (8, 32, 3, 3)
    assert g["up1.DCBlk.conv.bias"].shape == (1, 8, 1, 1)
    assert g["cwp.fc.linear1.weight"].shape == (1024, 1024)
    assert g["up4.fc.linear2.weight"].shape == (128, 1024)
    assert "block0.conv.weight" in d and "block1.batchnorm.running_var" in d and "block0.batchnorm.weight" not in d
    assert set(c) == {"joint_conv.0.weight", "joint_conv.2.weight"}
    assert c["joint_conv.0.weight"].shape == (64, 512, 3, 3)


def test_caff_is_identity_at_init():
    torch.manual_seed(0)
    caff = CAFF(16)
    x, c = torch.randn(3, 16, 5, 5), torch.randn(3, 256)
    torch.testing.assert_close(caff(x, c), x, rtol=0, atol=0)
    perturb_(caff)
    gamma, beta = caff.fc_gamma(c)[:, :, None, None], caff.fc_beta(c)[:, :, None, None]
    torch.testing.assert_close(caff(x, c), gamma * x + beta)


def reference_cconv(conv: cConv2d, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Independent reference: one F.conv2d per sample with W * scale_b + shift_b (scale/shift per [out, in])."""
    o, i = conv.out_channels, conv.in_channels
    outs = []
    for b in range(x.shape[0]):
        scale = conv.scales(c[b:b + 1]).reshape(o, i)[:, :, None, None]
        shift = conv.shifts(c[b:b + 1]).reshape(o, i)[:, :, None, None]
        outs.append(F.conv2d(x[b:b + 1], conv.weight * scale + shift, None, stride=1, padding=1))
    return torch.cat(outs)


def test_cconv2d_is_per_sample_modulated_conv_without_bias():
    torch.manual_seed(0)
    conv = cConv2d(6, 8, 3, 1, 1)
    x, c = torch.randn(3, 6, 7, 7), torch.randn(3, 256)
    with torch.no_grad():
        # at init: scale = 1, shift = 0, so every sample uses the shared kernel
        torch.testing.assert_close(conv(x, c), F.conv2d(x, conv.weight, None, padding=1))
        perturb_(conv, std=0.1)
        out = conv(x, c)
        torch.testing.assert_close(out, reference_cconv(conv, x, c))
        assert not torch.allclose(out[:1], F.conv2d(x[:1], conv.weight, None, padding=1), atol=1e-3)
        conv.bias.add_(5.0)  # the parameter exists but is not applied
        torch.testing.assert_close(conv(x, c), out, rtol=0, atol=0)
    bound = 1 / (6 * 9) ** 0.5
    assert conv.bias.shape == (1, 8, 1, 1) and (cConv2d(6, 8, 3, 1, 1).bias.abs() <= bound).all()


def test_cconv2d_bias_gets_no_gradient():
    torch.manual_seed(0)
    conv = cConv2d(4, 8, 3, 1, 1)
    conv(torch.randn(2, 4, 5, 5), torch.randn(2, 256)).square().sum().backward()
    assert conv.bias.grad is None and conv.weight.grad is not None


def test_dcblock_returns_weight_map_times_input_plus_bias_map():
    torch.manual_seed(0)
    blk = DCBlock(16)
    perturb_(blk)
    img, mask, c = torch.randn(2, 16, 8, 8), torch.randn(2, 16, 8, 8), torch.randn(2, 256)
    with torch.no_grad():
        h = reference_cconv(blk.conv, mask, c)
        a, bm = blk.conv_weight(h), blk.conv_bias(h)
        assert a.shape == bm.shape == (2, 1, 8, 8)
        torch.testing.assert_close(blk(img, mask, c), a * img + bm)


def deblock_reference(blk: DEBlock, h, skip, mask, c, ti, w=None):
    x = blk.conv(F.interpolate(h, scale_factor=2, mode="nearest"))
    h_m = F.leaky_relu(blk.CAFF(x, c), 0.2)
    h_s = F.leaky_relu(blk.DCBlk(x, mask, c), 0.2)
    if w is None:
        w = torch.sigmoid(blk.fc.linear2(ti))[:, :, None, None]
    return w * h_m + (1 - w) * h_s + skip


def test_deblock_combination_is_half_half_at_init_and_sigmoid_weighted_after():
    torch.manual_seed(0)
    blk = DEBlock(16, 8)
    h, skip, mask = torch.randn(2, 16, 4, 4), torch.randn(2, 8, 8, 8), torch.randn(2, 8, 8, 8)
    c, ti = torch.randn(2, 256), torch.randn(2, 1024)
    with torch.no_grad():
        w = blk.combination_weights(ti)
        assert w.shape == (2, 8, 1, 1)
        torch.testing.assert_close(w, torch.full_like(w, 0.5), rtol=0, atol=0)
        half = torch.full((2, 8, 1, 1), 0.5)
        torch.testing.assert_close(blk(h, skip, mask, c, ti), deblock_reference(blk, h, skip, mask, c, ti, w=half))
        perturb_(blk)
        w = torch.sigmoid(blk.fc.linear2(ti))
        assert not torch.allclose(w, torch.full_like(w, 0.5))
        torch.testing.assert_close(blk(h, skip, mask, c, ti), deblock_reference(blk, h, skip, mask, c, ti))


def test_generator_deblocks_use_half_half_combination_at_init():
    """Inside NetG (ngf 4): every up-block's output equals 0.5 h_m + 0.5 h_s + skip, recomputed from its inputs."""
    torch.manual_seed(0)
    g = NetG(4).eval()
    perturb_(g.cwp)  # non-trivial ti; the DEBlock weights still give w = 0.5 because fc.linear2 starts at zero
    seen = {}
    for k in range(1, 7):
        blk = getattr(g, f"up{k}")
        blk.register_forward_hook(lambda m, args, out, k=k: seen.__setitem__(k, (m, args, out)))
    with torch.no_grad():
        g(torch.rand(1, 3, 256, 256) * 2 - 1, torch.randn(1, 256))
        for k, (blk, (h, skip, mask, c, ti), out) in seen.items():
            half = torch.full((1, out.shape[1], 1, 1), 0.5)
            torch.testing.assert_close(out, deblock_reference(blk, h, skip, mask, c, ti, w=half), msg=f"up{k}")


def test_cwp_fuses_difference_product_and_codes():
    torch.manual_seed(0)
    cwp = CWP(32, 256)
    v, t = torch.randn(2, 32, 4, 4), torch.randn(2, 256)
    with torch.no_grad():
        img = cwp.img_enc(v).flatten(1)
        txt = cwp.txt_enc(t)
        joint = cwp.fuse(torch.cat([img, txt], 1))
        a, b = joint[:, :256], joint[:, 256:]
        expect = F.leaky_relu(cwp.fc.linear1(torch.cat([a - b, a * b, img, txt], 1)), 0.2)
        torch.testing.assert_close(cwp(v, t), expect)
    with pytest.raises(ValueError):
        CWP(32, 128)
