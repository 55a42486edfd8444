"""Infinite batch samplers for ``IterBasedRunner`` (mmdetection 2.x), grouped or not."""
from __future__ import annotations

import itertools

import numpy as np
import torch
from torch.utils.data.sampler import BatchSampler

from mmdet.engine.dist import get_dist_info

from .group_sampler import _group_flags
from .seed import sync_random_seed


class InfiniteBatchSampler(BatchSampler):
    """Endless batches of ``batch_size`` indices from a per-rank slice of an endless index stream.

    Args:
        dataset: any sized dataset.
        batch_size: per-GPU batch size.
        world_size, rank: default to ``torch.distributed``'s.
        seed: shared base seed (random and broadcast when None).
        shuffle: a fresh ``torch.randperm`` per pass (generator seeded once with ``seed``).
    """

    def __init__(self, dataset, batch_size: int = 1, world_size: int | None = None, rank: int | None = None,
                 seed: int | None = 0, shuffle: bool = True):
        default_rank, default_world = get_dist_info()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.dataset = dataset
        self.batch_size = batch_size
        self.seed = sync_random_seed(seed)
        self.shuffle = shuffle
        self.size = len(dataset)

    def _infinite_indices(self):
        g = torch.Generator()
        g.manual_seed(self.seed)
        while True:
            if self.shuffle:
                yield from torch.randperm(self.size, generator=g).tolist()
            else:
                yield from range(self.size)

    def _indices_of_rank(self):
        return itertools.islice(self._infinite_indices(), self.rank, None, self.world_size)

    def __iter__(self):
        batch = []
        for idx in self._indices_of_rank():
            batch.append(idx)
            if len(batch) == self.batch_size:
                yield batch
                batch = []

    def __len__(self) -> int:
        return self.size


class InfiniteGroupBatchSampler(InfiniteBatchSampler):
    """Like :class:`InfiniteBatchSampler`, but each batch holds indices of one aspect group (``dataset.flag``)."""

    def __init__(self, dataset, batch_size: int = 1, world_size: int | None = None, rank: int | None = None,
                 seed: int | None = 0, shuffle: bool = True):
        super().__init__(dataset, batch_size, world_size, rank, seed, shuffle)
        self.flag = _group_flags(dataset)

    def __iter__(self):
        buckets = {group: [] for group in np.unique(self.flag).tolist()}
        for idx in self._indices_of_rank():
            bucket = buckets[int(self.flag[idx])]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                bucket.clear()
