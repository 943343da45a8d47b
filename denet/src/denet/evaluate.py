"""Evaluation of an editor on the test split: MP with its parts (``denet.metrics``) and FID (spec 3.6, 1.5).

Per test batch (the DF-GAN test transform, ``drop_last``; ``eval_samples`` keeps the first n edits): the target text
of source i is the caption of source i+1 of the batch (a mismatched caption, as ManiGAN's "randomly chosen text");
x' = NetG(x, s_target) in eval mode, clamped to [-1, 1] with NaN -> -1. FID: torchvision ImageNet Inception-v3
pool features of the edits (``common.metrics.fid`` protocol ``dfgan``, as DF-GAN/GALIP) against ``fid_stats``.
Captions, crops and flips come from a generator seeded by ``seed``; the caller's RNG state is left untouched.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from common import distributed
from common.dfgan_fid import check_eval_files, fid_extractor
from common.distributed import Dist, epoch_loader
from common.metrics.fid import frechet_distance, load_statistics, signed_to_unit, statistics

from .config import DENetConfig
from .data import dataset
from .losses import roll
from .metrics import manipulative_precision, pixel_differences, text_image_similarity
from .nets import encode


@torch.inference_mode()
def evaluate(nets, config: DENetConfig, where: Dist, seed: int, show_progress: bool = True) -> dict:
    """``{"mp", "sim", "diff", "mse", "fid", "n_samples"}`` (all ranks), plus the synthetic colour-edit check."""
    check_eval_files(config, "denet")
    devices = [where.device] if where.device.type == "cuda" else []
    netG = nets.netG  # noqa: N806
    was_training = netG.training
    netG.eval()
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed * 1009 + where.rank)
        extractor = fid_extractor(config, where.device)
        reference = load_statistics(config.fid_stats)
        batches = epoch_loader(dataset(config, "test"), config.eval_batch_size, shuffle=False, seed=seed, epoch=0,
                               num_workers=config.num_workers, where=where)
        quota = None if config.eval_samples is None else -(-config.eval_samples // where.world_size)
        parts: dict[str, list[torch.Tensor]] = {"diff": [], "mse": [], "sim": [], "feats": []}
        done = 0
        bar = tqdm(batches, desc="eval", unit="batch", leave=False, disable=not (show_progress and where.is_main))
        for batch in bar:
            if quota is not None and done >= quota:
                break
            keep = None if quota is None else quota - done
            images = batch["image"].to(where.device)
            _, sent = encode(nets.text_encoder, batch["tokens"].to(where.device), batch["length"].to(where.device))
            target = roll(sent)
            edited = torch.nan_to_num(netG(images, target).float().clamp(-1, 1), nan=-1.0)[:keep]
            images, target = images[:keep], target[:keep]
            done += edited.size(0)
            diff, mse = pixel_differences(images, edited)
            parts["diff"].append(diff)
            parts["mse"].append(mse)
            parts["sim"].append(text_image_similarity(nets.image_encoder(edited)[1], target))
            parts["feats"].append(torch.from_numpy(extractor(signed_to_unit(edited))).to(where.device))
    netG.train(was_training)
    if not parts["feats"]:
        raise ValueError(f"test split smaller than one eval batch ({config.eval_batch_size})")
    got = {k: distributed.gather_cat(torch.cat(v)).cpu()[: config.eval_samples] for k, v in parts.items()}
    mu, sigma = statistics(got["feats"].numpy())
    results = {"mp": float(manipulative_precision(got["diff"], got["sim"]).mean()), "sim": float(got["sim"].mean()),
               "diff": float(got["diff"].mean()), "mse": float(got["mse"].mean()),
               "fid": frechet_distance(mu, sigma, *reference), "n_samples": int(got["diff"].numel())}
    if config.synthetic and where.is_main:
        from .edit_check import colour_edit_check

        results.update(colour_edit_check(nets, config, where.device))
    return results
