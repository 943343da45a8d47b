"""GALIP modules against the official facts (spec text_to_image.md 2.2-2.5, 2.7; tobran/GALIP:code/models/GALIP.py).

One randomly initialised ``clip.model.CLIP`` with the real ViT-B/32 sizes is shared by all tests (GALIP hard-codes
768/512 widths, so a narrower CLIP would not fit).
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F

from common.errors import DataFormatError
from galip.checkpoints import (
    load_official_checkpoint,
    load_official_netC,
    load_official_netD,
    load_official_netG,
)
from galip.models import (
    Affine,
    CLIPImageEncoder,
    CLIPMapper,
    CLIPTextEncoder,
    DFBlock,
    NetC,
    NetD,
    NetG,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # clip's pkg_resources deprecation warning
    from clip.model import CLIP

MEAN = torch.tensor([0.48145466, 0.4578275, 0.40821073]).view(1, 3, 1, 1)
STD = torch.tensor([0.26862954, 0.26130258, 0.27577711]).view(1, 3, 1, 1)


@pytest.fixture(scope="module")
def netG(clip_model: CLIP) -> NetG:  # noqa: N802
    torch.manual_seed(1)
    return NetG(64, 100, 512, 256, 3, clip_model).eval()


@pytest.fixture(scope="module")
def image_encoder(clip_model: CLIP) -> CLIPImageEncoder:
    return CLIPImageEncoder(clip_model).eval()


# ---------------------------------------------------------------- shapes


def test_netg_maps_noise_and_sentence_to_unbounded_224px_rgb(netG: NetG) -> None:
    torch.manual_seed(2)
    with torch.no_grad():
        out = netG(torch.randn(2, 100), torch.randn(2, 512), eval=True)
    assert out.shape == (2, 3, 224, 224) and out.dtype == torch.float32
    assert torch.isfinite(out).all()


def test_mapper_appends_prompts_in_blocks_1_to_8_and_returns_patch_tokens(clip_model: CLIP) -> None:
    mapper = CLIPMapper(clip_model).eval()
    vis = clip_model.visual
    torch.manual_seed(3)
    fuse, prompts = torch.randn(2, 768, 7, 7), torch.randn(2, 8, 768)
    with torch.no_grad():
        out = mapper(fuse, prompts)
        # independent batch-first reference of the official CLIP_Mapper loop
        tok = torch.cat([vis.class_embedding.expand(2, 1, 768), fuse.flatten(2).transpose(1, 2)], 1)
        tok = vis.ln_pre(tok + vis.positional_embedding)
        for i, blk in enumerate(vis.transformer.resblocks):
            if 1 <= i <= 8:
                tok = blk(torch.cat([tok, prompts[:, i - 1:i]], 1).transpose(0, 1)).transpose(0, 1)[:, :50]
            else:
                tok = blk(tok.transpose(0, 1)).transpose(0, 1)
        ref = tok[:, 1:].transpose(1, 2).reshape(2, 768, 7, 7)
        changed = prompts.clone()
        changed[:, 7] += 1.0  # the last prompt (block 8) must still reach the output
        out_changed = mapper(fuse, changed)
    assert out.shape == (2, 768, 7, 7)
    torch.testing.assert_close(out, ref, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(out, out_changed)


def test_image_encoder_taps_blocks_1_4_8_and_matches_clip_encode_image(clip_model: CLIP,
                                                                        image_encoder: CLIPImageEncoder) -> None:
    torch.manual_seed(4)
    img = torch.rand(2, 3, 224, 224) * 2 - 1
    seen: dict[int, torch.Tensor] = {}
    hooks = [clip_model.visual.transformer.resblocks[i].register_forward_hook(
        lambda _m, _i, o, i=i: seen.__setitem__(i, o.detach().clone())) for i in (1, 4, 8)]
    try:
        with torch.no_grad():
            feats, emb = image_encoder(img)
            ref_emb = clip_model.encode_image(((img + 3) / 4 - MEAN) / STD)
    finally:
        for h in hooks:
            h.remove()
    assert feats.shape == (2, 3, 768, 7, 7) and emb.shape == (2, 512)
    torch.testing.assert_close(emb, ref_emb, atol=1e-4, rtol=1e-4)
    for k, i in enumerate((1, 4, 8)):  # hooks fired twice (ours, then encode_image): same input, same tokens
        ref = seen[i][1:].permute(1, 2, 0).reshape(2, 768, 7, 7)
        torch.testing.assert_close(feats[:, k], ref, atol=1e-4, rtol=1e-4)


def test_text_encoder_matches_clip_encode_text(clip_model: CLIP) -> None:
    enc = CLIPTextEncoder(clip_model).eval()
    torch.manual_seed(5)
    tokens = torch.zeros(2, 77, dtype=torch.long)
    tokens[:, 0] = 49406
    tokens[0, 1:6], tokens[0, 6] = torch.randint(1, 49000, (5,)), 49407
    tokens[1, 1:12], tokens[1, 12] = torch.randint(1, 49000, (11,)), 49407
    with torch.no_grad():
        sent, words = enc(tokens)
        ref = clip_model.encode_text(tokens)
    assert sent.shape == (2, 512) and words.shape == (2, 77, 512)
    torch.testing.assert_close(sent, ref, atol=1e-4, rtol=1e-4)


def test_transf_to_clip_input_keeps_the_double_mapping_quirk() -> None:
    torch.manual_seed(6)
    x = torch.rand(2, 3, 224, 224) * 2 - 1
    torch.testing.assert_close(CLIPImageEncoder.transf_to_CLIP_input(x), ((x + 3) / 4 - MEAN) / STD)
    x256 = torch.rand(1, 3, 256, 256) * 2 - 1
    near = F.interpolate(x256, size=(224, 224), mode="nearest")
    torch.testing.assert_close(CLIPImageEncoder.transf_to_CLIP_input(x256), ((near + 3) / 4 - MEAN) / STD)
    with pytest.raises(ValueError):
        CLIPImageEncoder.transf_to_CLIP_input(x[0])


def test_netd_and_netc_shapes_and_fresh_d_is_the_main_shortcut() -> None:
    torch.manual_seed(7)
    netD, netC = NetD(), NetC()  # noqa: N806
    feats, sent = torch.randn(2, 3, 768, 7, 7), torch.randn(2, 512)
    with torch.no_grad():
        h = netD(feats)
        logit = netC(h, sent)
        # gamma = beta = 0 at init: the CD-blocks pass tap0 through and main applies only its 1x1 conv_s
        ref = netD.main.conv_s(feats[:, 0])
    assert h.shape == (2, 512, 7, 7) and logit.shape == (2, 1, 1, 1)
    torch.testing.assert_close(h, ref)
    for blk in (*netD.DBlocks, netD.main):
        assert blk.gamma.item() == 0.0
    assert all(blk.beta.item() == 0.0 for blk in netD.DBlocks) and not hasattr(netD.main, "beta")


# ---------------------------------------------------------------- init and parameter counts


def test_fresh_affine_is_identity_and_dfblock_is_two_leaky_relus() -> None:
    torch.manual_seed(8)
    aff = Affine(612, 16)
    assert torch.all(aff.fc_gamma.linear2.weight == 0) and torch.all(aff.fc_gamma.linear2.bias == 1)
    assert torch.all(aff.fc_beta.linear2.weight == 0) and torch.all(aff.fc_beta.linear2.bias == 0)
    x, c = torch.randn(2, 16, 5, 5), torch.randn(2, 612)
    torch.testing.assert_close(aff(x, c), x)
    blk = DFBlock(612, 16)
    torch.testing.assert_close(blk(x, c), F.leaky_relu(F.leaky_relu(x, 0.2), 0.2))


def test_parameter_counts_equal_the_spec_derivation(clip_model: CLIP, netG: NetG) -> None:
    sd = netG.state_dict()
    assert len(sd) == 525 and sum(v.numel() for v in sd.values()) == 139_284_675
    trainable = [p for p in netG.parameters() if p.requires_grad]
    assert len(trainable) == 376 and sum(p.numel() for p in trainable) == 51_830_211
    frozen = {k for k, p in netG.named_parameters() if not p.requires_grad}
    assert len(frozen) == 149 and all(k.startswith("mapping.CLIP_ViT.") for k in frozen)

    def count(prefix: str) -> int:
        return sum(p.numel() for k, p in netG.named_parameters() if k.startswith(prefix))

    assert count("fc_code.") == 316_736 and count("mapping.FBlocks.") == 1_172_864
    assert count("mapping.conv_fuse.") == 1_229_568 and count("mapping.fc_prompt.") == 3_766_272
    assert count("mapping.conv.") == 9_830_912 and count("to_rgb.") == 1_731
    assert [count(f"GBlocks.{i}.") for i in range(6)] == [9_331_712] * 3 + [5_098_240, 1_746_304, 672_448]
    netD, netC = NetD(), NetC()  # noqa: N806
    assert len(netD.state_dict()) == 17 and sum(p.numel() for p in netD.parameters() if p.requires_grad) == 28_706_821
    assert len(netC.state_dict()) == 2 and sum(p.numel() for p in netC.parameters() if p.requires_grad) == 2_099_200
    CLIPTextEncoder(clip_model)
    # both towers are frozen; only CLIP's unused logit_scale is left alone (as officially)
    assert [k for k, p in clip_model.named_parameters() if p.requires_grad] == ["logit_scale"]
    assert netG.mapping.CLIP_ViT.transformer is clip_model.visual.transformer  # shared, not copied


# ---------------------------------------------------------------- strict official key map


def _official(model: torch.nn.Module, prefix: str = "module.") -> dict[str, torch.Tensor]:
    return {prefix + k: v.clone() for k, v in model.state_dict().items()}


def test_official_netg_layout_with_ddp_prefix_loads_and_casts_fp16(netG: NetG) -> None:
    backup = {k: v.clone() for k, v in netG.state_dict().items()}
    sd = _official(netG)
    assert "module.mapping.CLIP_ViT.transformer.resblocks.11.mlp.c_proj.weight" in sd
    assert "module.mapping.FBlocks.0.fuse1.affine0.fc_gamma.linear1.weight" in sd
    assert sd["module.to_rgb.1.weight"].shape == (3, 64, 3, 3)
    sd["module.fc_code.weight"] += 1.0
    sd["module.mapping.CLIP_ViT.conv1.weight"] = sd["module.mapping.CLIP_ViT.conv1.weight"].half()
    try:
        load_official_netG(sd, netG, "state_epoch_100.pth")
        torch.testing.assert_close(netG.fc_code.weight, backup["fc_code.weight"] + 1.0)
        w = netG.mapping.CLIP_ViT.conv1.weight
        assert w.dtype == torch.float32
        torch.testing.assert_close(w, backup["mapping.CLIP_ViT.conv1.weight"].half().float())
    finally:
        netG.load_state_dict(backup)


def test_official_netd_netc_without_prefix_load() -> None:
    netD, netC = NetD(), NetC()  # noqa: N806
    sd_d, sd_c = _official(NetD(), ""), _official(NetC(), "")
    assert set(sd_d) >= {"DBlocks.0.gamma", "DBlocks.1.beta", "DBlocks.0.conv_r.2.weight", "main.conv_s.bias"}
    assert sd_c["joint_conv.0.weight"].shape == (128, 1024, 4, 4)
    assert sd_c["joint_conv.2.weight"].shape == (1, 128, 4, 4)
    load_official_netD(sd_d, netD)
    load_official_netC(sd_c, netC)
    torch.testing.assert_close(netC.joint_conv[0].weight, sd_c["joint_conv.0.weight"])


@pytest.mark.parametrize("fault", ["missing", "extra", "shape", "mixed_prefix"])
def test_bad_official_state_dict_gives_one_line_error_naming_file_and_key(fault: str) -> None:
    sd = _official(NetD())
    key = "module.DBlocks.1.conv_r.0.weight"
    if fault == "missing":
        del sd[key]
    elif fault == "extra":
        key = "module.DBlocks.2.gamma"
        sd[key] = torch.zeros(1)
    elif fault == "shape":
        sd[key] = torch.zeros(768, 768, 1, 1)
    else:
        sd[key[len("module."):]] = sd.pop(key)
    with pytest.raises(DataFormatError) as err:
        load_official_netD(sd, NetD(), "state_epoch_020.pth")
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith("state_epoch_020.pth: netD:")
    assert "DBlocks.1.conv_r.0.weight" in msg or "DBlocks.2.gamma" in msg, msg


def test_official_checkpoint_file_layout_is_read(tmp_path) -> None:
    small = [torch.nn.Linear(3, 2) for _ in range(3)]
    opt = torch.optim.Adam(small[0].parameters(), lr=1e-4, betas=(0.0, 0.9))
    small[0](torch.randn(1, 3)).sum().backward()
    opt.step()
    path = tmp_path / "state_epoch_005.pth"
    torch.save({"model": {n: _official(m) for n, m in zip(("netG", "netD", "netC"), small)},
                "optimizers": {"optimizer_G": opt.state_dict(), "optimizer_D": opt.state_dict()}, "epoch": 5}, path)
    targets = [torch.nn.Linear(3, 2) for _ in range(3)]
    ckpt = load_official_checkpoint(path, *targets)
    assert ckpt["epoch"] == 5
    for a, b in zip(small, targets):
        torch.testing.assert_close(a.weight, b.weight)
    torch.save({"netG": {}}, path)
    with pytest.raises(DataFormatError, match="no 'model' dict"):
        load_official_checkpoint(path, targets[0])
    with pytest.raises(DataFormatError, match="not found"):
        load_official_checkpoint(tmp_path / "absent.pth", targets[0])
