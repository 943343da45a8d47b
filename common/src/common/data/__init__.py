"""Loaders of the real on-disk formats (MMRec, DF-GAN text-image, AR-LDM stories, HCRN VideoQA)."""
