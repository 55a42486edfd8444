"""``DistributedSampler`` with mmdetection 2.x seeding (``epoch + seed``, seed shared by all ranks)."""
from __future__ import annotations

import math

import torch
from torch.utils.data import DistributedSampler as _TorchDistributedSampler

from mmdet.engine.dist import get_dist_info

from .seed import sync_random_seed


class DistributedSampler(_TorchDistributedSampler):
    """Each rank takes every ``num_replicas``-th index of a (shuffled) list padded by repetition.

    Args:
        dataset: any sized dataset.
        num_replicas, rank: default to ``torch.distributed``'s world size and rank.
        shuffle: permute with a generator seeded by ``epoch + seed``.
        seed: base seed (a random one is broadcast from rank 0 when None).
    """

    def __init__(self, dataset, num_replicas: int | None = None, rank: int | None = None, shuffle: bool = True,
                 seed: int | None = 0):
        default_rank, default_world = get_dist_info()
        num_replicas = default_world if num_replicas is None else num_replicas
        rank = default_rank if rank is None else rank
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=shuffle)
        self.seed = sync_random_seed(seed)

    def __iter__(self):
        if self.shuffle:
            g = torch.Generator()
            g.manual_seed(self.epoch + self.seed)
            indices = torch.randperm(len(self.dataset), generator=g)
        else:
            indices = torch.arange(len(self.dataset))
        indices = indices.repeat(math.ceil(self.total_size / max(len(indices), 1)))[:self.total_size]
        return iter(indices[self.rank:self.total_size:self.num_replicas].tolist())
