"""Learning check: the embedded default's recipe (stand-in Inception trunk, DAMSM pre-training, then DE-Net) on
SYNTHETIC shapes: smoke.yaml's data and schedule (what `make reproduce-denet` runs), without its evaluations at epoch 6.

The DAMSM trained over the stand-in trunk must score a scene higher with its own caption than with the caption
recoloured. Asked to recolour the shape (its first caption with the colour word replaced by another of the six
colours), the trained editor must produce the requested colour far above chance (1/6), change the background little
(much less than the untrained editor) and change the shape more than the background.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from conftest import fid_without_sqrtm_value

from common.dfgan_fid import real_statistics
from common.distributed import Dist
from common.metrics.fid import write_random_torchvision_inception_weights
from common.run_folder import read_metrics
from common.synthetic import text_image
from denet.config import load_config
from denet.edit_check import colour_edit_check, edit_requests, recoloured
from denet.metrics import text_image_similarity
from denet.nets import load_encoders
from denet.reproduce import STAND_IN_EPOCHS
from denet.sample import encode_texts
from denet.stand_in import train_stand_in_inception
from denet.train import Trainer, train
from denet.train_damsm import train_damsm

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
N_TRAIN, DAMSM_EPOCHS, EPOCHS = 512, 12, 12  # smoke.yaml: its scenes, DAMSM epochs and 768 DE-Net steps


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> tuple[dict, dict, tuple[float, float]]:
    root = tmp_path_factory.mktemp("learning")
    data = text_image.write(root / "shapes", seed=0, image_size=256, n_train=N_TRAIN, n_test=64)
    weights = root / "weights"
    config = load_config(CONFIGS / "smoke.yaml", data=str(data), runs_dir=str(root / "runs"), run_name="learn",
                         text_encoder=str(weights / f"text_encoder{DAMSM_EPOCHS}.pth"),
                         image_encoder=str(weights / f"image_encoder{DAMSM_EPOCHS}.pth"),
                         inception_weights=str(weights / "stand_in.pth"), fid_weights=str(weights / "random.pth"),
                         fid_stats=str(root / "stats.npz"), damsm_epochs=DAMSM_EPOCHS, epochs=EPOCHS,
                         test_interval=EPOCHS, gen_interval=EPOCHS, save_interval=EPOCHS)
    write_random_torchvision_inception_weights(config.fid_weights, seed=0)
    train_stand_in_inception(config, config.inception_weights, STAND_IN_EPOCHS)
    real_statistics(config, config.fid_stats)
    train_damsm(config, weights)
    torch.manual_seed(config.seed)
    untrained = colour_edit_check(Trainer(config, Dist(0, 1, torch.device("cpu"))).nets, config, torch.device("cpu"))
    with pytest.MonkeyPatch.context() as patch:  # the FID value is not checked here (see conftest)
        patch.setattr("denet.evaluate.frechet_distance", fid_without_sqrtm_value)
        trained = read_metrics(train(config))[-1]["eval"]
    return trained, untrained, damsm_similarities(config)


@torch.inference_mode()
def damsm_similarities(config) -> tuple[float, float]:
    """Mean DAMSM cosine (MP's sim) of the test scenes with their own caption and with the recoloured one."""
    text_encoder, image_encoder = load_encoders(config, torch.device("cpu"))
    texts, sources, _, own, _ = edit_requests(config)
    code = image_encoder(sources)[1]
    own_texts = [recoloured(text, colour) for text, colour in zip(texts, own)]
    return tuple(text_image_similarity(code, encode_texts(text_encoder, config, t, torch.device("cpu"))[1])
                 .mean().item() for t in (own_texts, texts))


def test_stand_in_damsm_tells_the_caption_colour(run):
    own, recoloured_ = run[2]
    print(f"DAMSM sim: own caption {own:.3f}, recoloured caption {recoloured_:.3f} [SYNTHETIC, STAND-IN weights]")
    assert own >= recoloured_ + 0.2


def test_trained_editor_keeps_the_background_and_changes_the_object(run):
    trained, untrained, _ = run
    print({k: round(v, 4) for k, v in trained.items() if isinstance(v, float)},
          f"untrained background L1 {untrained['background_l1']:.4f} [SYNTHETIC]")
    assert trained["background_l1"] <= 0.5 * untrained["background_l1"], (trained, untrained)
    assert trained["background_l1"] <= 0.1, trained
    assert trained["shape_l1"] >= 1.3 * trained["background_l1"], trained  # the change sits on the object


def test_trained_editor_paints_the_requested_colour(run):
    trained, untrained, _ = run
    print(f"colour hit {trained['colour_hit']:.3f} (untrained {untrained['colour_hit']:.3f}, chance "
          f"{trained['colour_chance']:.3f}), source colour kept {trained['colour_kept']:.3f} [SYNTHETIC]")
    assert trained["colour_hit"] >= 0.3, trained  # chance 1/6: 19+ of 64 edits has p < 0.005 at chance
    assert untrained["colour_hit"] <= 0.2, untrained
