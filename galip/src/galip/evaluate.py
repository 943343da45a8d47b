"""FID and CLIP score as GALIP reports them (``tobran/GALIP:code/lib/modules.py:calculate_FID_CLIP_sim``; spec 1.5,
2.9), and the reference statistics of a dataset's test images.

Per test batch (one random caption per image, ``sample_times`` passes, ``drop_last``; ``fid_samples`` stops early at
that many samples, e.g. the common 30k for COCO, instead of the official full passes): the sentence embedding of the
caption, z ~ N(0, I), x = NetG(z, s, eval=True) clamped to [-1, 1] with NaN -> -1; then
- CLIP score: cos(CLIP image embedding of x through the official input mapping, CLIP text embedding of the caption),
  averaged over all samples (raw value, no x100; ``common.metrics.clip_score``);
- FID: torchvision ImageNet Inception-v3 pool features of (x + 1) / 2 under the DF-GAN input quirk
  (``common.metrics.fid`` protocol ``dfgan``) against the ``fid_stats`` npz, one FID over all samples.
Sampling noise and captions come from a generator seeded by ``seed``; the caller's RNG state is left untouched.
"""

from __future__ import annotations

import torch
from tqdm import tqdm

from common import distributed
from common.dfgan_fid import check_eval_files, fid_extractor
from common.distributed import Dist, epoch_loader
from common.metrics.clip_score import clip_cosines
from common.metrics.fid import frechet_distance, load_statistics, signed_to_unit, statistics

from .config import GALIPConfig
from .data import dataset


@torch.inference_mode()
def evaluate(nets, config: GALIPConfig, where: Dist, seed: int, show_progress: bool = True) -> dict:
    """``{"fid", "clip_score", "n_samples"}`` over ``sample_times`` passes of the test split (all ranks)."""
    check_eval_files(config, "galip")
    devices = [where.device] if where.device.type == "cuda" else []
    with torch.random.fork_rng(devices=devices):  # building the Inception draws random inits too
        torch.manual_seed(seed * 1009 + where.rank)
        extractor = fid_extractor(config, where.device)
        reference = load_statistics(config.fid_stats)
        test_set = dataset(config, "test")
        netG = nets.netG  # noqa: N806
        was_training = netG.training
        netG.eval()
        feats, cosines = [], []
        quota = None if config.fid_samples is None else -(-config.fid_samples // where.world_size)  # per process
        done = 0
        for t in range(config.sample_times):
            if quota is not None and done >= quota:
                break
            batches = epoch_loader(test_set, config.eval_batch_size, shuffle=False, seed=seed, epoch=t,
                             num_workers=config.num_workers, where=where)
            bar = tqdm(batches, desc=f"eval pass {t + 1}/{config.sample_times}", unit="batch", leave=False,
                       disable=not (show_progress and where.is_main))
            for batch in bar:
                if quota is not None and done >= quota:
                    break
                tokens = batch["tokens"].to(where.device)[: None if quota is None else quota - done]
                done += tokens.size(0)
                sent, _ = nets.text_encoder(tokens)
                noise = torch.randn(tokens.size(0), config.z_dim, device=where.device)
                fake = netG(noise, sent.float(), eval=True).float()
                fake = torch.nan_to_num(fake.clamp(-1.0, 1.0), nan=-1.0, posinf=1.0, neginf=-1.0)
                _, image_emb = nets.image_encoder(fake)
                cosines.append(clip_cosines(image_emb, sent))
                feats.append(torch.from_numpy(extractor(signed_to_unit(fake))).to(where.device))
    netG.train(was_training)
    if not feats:
        raise ValueError(f"test split smaller than one eval batch ({config.eval_batch_size})")
    keep = config.fid_samples  # None keeps all; the per-process quotas may overshoot by < world_size
    all_feats = distributed.gather_cat(torch.cat(feats)).cpu().numpy()[:keep]
    all_cos = distributed.gather_cat(torch.cat(cosines)).cpu()[:keep]
    mu, sigma = statistics(all_feats)
    return {"fid": frechet_distance(mu, sigma, *reference), "clip_score": float(all_cos.mean()),
            "n_samples": int(all_feats.shape[0])}
