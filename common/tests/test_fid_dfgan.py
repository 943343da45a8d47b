"""FID protocol "dfgan": DF-GAN/GALIP's torchvision Inception wrapper, checked against a hand-built reference."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torchvision.models import inception_v3

from common.errors import DataFormatError, WeightsNotFoundError
from common.metrics import fid

# The torchvision modules tobran/GALIP:code/models/inception.py chains (blocks 0-3), in order.
TRUNK = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3",
         "maxpool2", "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
         "Mixed_7a", "Mixed_7b", "Mixed_7c", "avgpool"]


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    path = tmp_path_factory.mktemp("w") / fid.TORCHVISION_INCEPTION_FILE
    return fid.write_random_torchvision_inception_weights(path, seed=0)


@pytest.fixture(scope="module")
def reference_net(weights):
    """torchvision's own inception_v3 with the same weights, loaded without our code."""
    net = inception_v3(weights=None, aux_logits=True, init_weights=False)
    net.load_state_dict(torch.load(weights, weights_only=True))
    return net.eval()


@pytest.fixture(scope="module")
def generated():
    """Two generator-like outputs in about [-1.5, 1.5], with a nan and infinities."""
    x = torch.randn(2, 3, 48, 48, generator=torch.Generator().manual_seed(1)) * 0.6
    x[0, 0, 0, 0], x[1, 2, 3, 4], x[1, 1, 5, 6] = float("nan"), float("inf"), float("-inf")
    return x


def by_hand_unit_299(raw):
    """GALIP's steps written out: clamp, nan_to_num, Normalize(-1, 2), tensor Resize((299, 299)) (bilinear)."""
    x = raw.clamp(-1, 1)
    x = torch.where(torch.isnan(x), torch.full_like(x, -1.0), x)
    x = (x - (-1.0)) / 2.0
    return F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)


@torch.inference_mode()
def trunk_features(net, x):
    for name in TRUNK:
        x = getattr(net, name)(x)
    return x.flatten(1).numpy()


def affine(x):
    """The wrapper's normalize_input, channel by channel (ImageNet mean/std)."""
    x = x.clone()
    x[:, 0] = x[:, 0] * (0.229 / 0.5) + (0.485 - 0.5) / 0.5
    x[:, 1] = x[:, 1] * (0.224 / 0.5) + (0.456 - 0.5) / 0.5
    x[:, 2] = x[:, 2] * (0.225 / 0.5) + (0.406 - 0.5) / 0.5
    return x


@pytest.fixture(scope="module")
def dfgan_features(weights, generated):
    return fid.FIDFeatureExtractor(weights, protocol="dfgan")(fid.signed_to_unit(generated))


def test_dfgan_features_equal_a_hand_built_reference(dfgan_features, reference_net, generated):
    x = by_hand_unit_299(generated)
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=True)  # the wrapper's resize_input
    want = trunk_features(reference_net, affine(x))
    assert dfgan_features.shape == (2, 2048) and dfgan_features.dtype == np.float32
    assert np.isfinite(dfgan_features).all() and dfgan_features.std() > 1e-2
    np.testing.assert_allclose(dfgan_features, want, rtol=1e-5, atol=1e-6)


def test_dfgan_quirk_is_torchvision_transform_input_applied_to_unit_range(dfgan_features, weights, generated):
    """Same features as torchvision's own forward with transform_input=True fed [0, 1] images (fc dropped)."""
    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    net.load_state_dict(torch.load(weights, weights_only=True))
    net.fc = torch.nn.Identity()
    with torch.inference_mode():
        want = net.eval()(by_hand_unit_299(generated)).numpy()
    np.testing.assert_allclose(dfgan_features, want, rtol=1e-5, atol=1e-6)


def test_dfgan_quirk_differs_from_the_standard_two_x_minus_one_input(dfgan_features, reference_net, generated):
    standard = trunk_features(reference_net, 2 * by_hand_unit_299(generated) - 1)
    gap = np.abs(dfgan_features - standard).max()
    assert gap > 0.1 * np.abs(standard).max()


def test_dfgan_network_sees_the_affine_range_not_minus_one_to_one(weights):
    net = fid.load_torchvision_inception(weights)
    lo = net.network_input(torch.zeros(1, 3, 299, 299))[0, :, 0, 0]
    hi = net.network_input(torch.ones(1, 3, 299, 299))[0, :, 0, 0]
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    assert torch.allclose(lo, (mean - 0.5) / 0.5) and torch.allclose(hi, (mean + std - 0.5) / 0.5)
    assert lo.min() == pytest.approx(-0.188, abs=1e-5) and hi.max() == pytest.approx(0.428, abs=1e-5)


def test_signed_to_unit_clamps_and_replaces_non_finite_values():
    x = torch.tensor([-2.0, -1.0, 0.0, 0.5, 1.0, 3.0, float("nan"), float("inf"), float("-inf")])
    want = torch.tensor([0.0, 0.0, 0.5, 0.75, 1.0, 1.0, 0.0, 1.0, 0.0])
    assert torch.equal(fid.signed_to_unit(x), want)


def test_dfgan_protocol_resizes_tensors_to_299_bilinear():
    img = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    out = fid.to_unit_range(img, "dfgan")
    want = F.interpolate(img.float() / 255, size=(299, 299), mode="bilinear", align_corners=False)
    assert out.shape == (2, 3, 299, 299) and torch.allclose(out, want, atol=1e-6)
    unit = torch.rand(1, 3, 299, 299)
    assert torch.equal(fid.to_unit_range(unit, "dfgan"), unit)


def test_random_weights_have_torchvision_key_layout_and_round_trip(weights, tmp_path):
    state = torch.load(weights, weights_only=True)
    layout = inception_v3(weights=None, aux_logits=True, init_weights=False).state_dict()
    assert set(state) == {k for k in layout if not k.endswith("num_batches_tracked")}
    assert any(k.startswith("AuxLogits.") for k in state) and state["fc.weight"].shape == (1000, 2048)
    net = fid.load_torchvision_inception(weights)
    for i, name in enumerate(TRUNK):
        for key, value in net.trunk[i].state_dict().items():
            if not key.endswith("num_batches_tracked"):
                assert torch.equal(value, state[f"{name}.{key}"]), f"{name}.{key}"
    again = torch.load(fid.write_random_torchvision_inception_weights(tmp_path / "a.pth", seed=0), weights_only=True)
    other = torch.load(fid.write_random_torchvision_inception_weights(tmp_path / "b.pth", seed=1), weights_only=True)
    assert all(torch.equal(again[k], state[k]) for k in state)
    assert not torch.equal(other["Conv2d_1a_3x3.conv.weight"], state["Conv2d_1a_3x3.conv.weight"])


def test_dfgan_missing_weights_names_key_path_and_torchvision_file(tmp_path):
    with pytest.raises(WeightsNotFoundError) as err:
        fid.FIDFeatureExtractor(tmp_path / "absent.pth", protocol="dfgan", key="dfgan_inception")
    msg = str(err.value)
    assert "\n" not in msg and "dfgan_inception" in msg and "absent.pth" in msg
    assert fid.TORCHVISION_INCEPTION_FILE in msg and fid.TORCHVISION_INCEPTION_URL in msg


def test_dfgan_corrupt_or_wrong_weights_are_one_line_errors(weights, tmp_path):
    (tmp_path / "junk.pth").write_bytes(b"junk")
    fid_file = fid.write_random_fid_weights(tmp_path / "pt_inception.pth")  # pytorch-fid's network, not torchvision's
    state = torch.load(weights, weights_only=True)
    no_aux = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    torch.save(no_aux, tmp_path / "no_aux.pth")
    torch.save({**state, "fc.weight": torch.zeros(1008, 2048)}, tmp_path / "fc1008.pth")
    torch.save(torch.zeros(3), tmp_path / "tensor.pth")
    for name, words in (("junk.pth", "readable"), (fid_file.name, "missing"), ("no_aux.pth", "AuxLogits"),
                        ("fc1008.pth", "fc.weight"), ("tensor.pth", "state dict")):
        with pytest.raises(DataFormatError) as err:
            fid.FIDFeatureExtractor(tmp_path / name, protocol="dfgan")
        msg = str(err.value)
        assert "\n" not in msg and name in msg and words in msg, msg
