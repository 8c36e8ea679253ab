"""Training data: random patches from the preprocessed store, nnU-Net's augmentation, background workers."""

from autounet.trainers.data.augmentation import AugmentationPlan, build_transforms, plan_augmentation
from autounet.trainers.data.loader import CaseSource, PatchLoader, batch_seed
from autounet.trainers.data.pipeline import BatchStream, default_num_workers
from autounet.trainers.data.sampling import crop_with_padding, forced_foreground_slots, sample_patch_start

__all__ = [
    "AugmentationPlan",
    "BatchStream",
    "CaseSource",
    "PatchLoader",
    "batch_seed",
    "build_transforms",
    "crop_with_padding",
    "default_num_workers",
    "forced_foreground_slots",
    "plan_augmentation",
    "sample_patch_start",
]
