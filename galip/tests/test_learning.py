"""Embedded-default learning check: on SYNTHETIC shapes, with a tiny CLIP trained on their captions, GALIP's
generator learns the caption's colour (a colour classifier on its samples agrees with the caption far above the
majority-colour baseline). Runs the real ``train`` entry point with configs/smoke.yaml, shortened."""

from __future__ import annotations

import json

from conftest import CONFIGS

from common.dfgan_fid import real_statistics
from common.metrics.fid import write_random_torchvision_inception_weights
from common.synthetic import text_image
from galip.config import load_config
from galip.tiny_clip import train_tiny_clip
from galip.train import train


def test_generator_learns_the_caption_colour(tmp_path, fid_without_sqrtm):  # the FID value is not checked
    data = text_image.write(tmp_path / "shapes", seed=1, image_size=64, n_train=256, n_test=48)
    clip = train_tiny_clip(data, tmp_path / "tiny-clip.pt", steps=150, batch_size=32, seed=0)
    config = load_config(CONFIGS / "smoke.yaml", data=str(data), clip_weights=str(clip),
                         fid_weights=str(write_random_torchvision_inception_weights(tmp_path / "inc.pth")),
                         fid_stats=str(tmp_path / "stats.npz"), runs_dir=str(tmp_path / "runs"), run_name="learn",
                         epochs=4, eval_batch_size=48)
    real_statistics(config, config.fid_stats)
    run_dir = train(config)
    final = json.loads((run_dir / "metrics.jsonl").read_text().splitlines()[-1])["eval"]
    # 6 colours: chance 1/6; the majority colour of the test captions is the trivial baseline
    assert final["n"] == 48 and final["colour_baseline"] < 0.35
    assert final["colour_agreement"] >= max(0.4, 1.5 * final["colour_baseline"]), final
    assert (run_dir / "previews" / "epoch_0004.png").is_file() and (run_dir / "losses.png").is_file()
