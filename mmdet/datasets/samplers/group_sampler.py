"""Samplers that build every batch from one aspect-ratio group (``dataset.flag``), mmdetection 2.x.

Random draws match mmdet 2.x exactly: :class:`GroupSampler` uses numpy's global generator (seeded per
process by the runner), :class:`DistributedGroupSampler` a ``torch.Generator`` seeded with ``epoch + seed``,
so every rank draws the same permutation and takes its own slice.
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch.utils.data import Sampler

from mmdet.engine.dist import get_dist_info

from .seed import sync_random_seed


def _group_flags(dataset) -> np.ndarray:
    if not hasattr(dataset, "flag"):
        raise AttributeError(f"{type(dataset).__name__} has no aspect-group 'flag' (built in training mode "
                             f"only); use shuffle=False or a training dataset")
    return np.asarray(dataset.flag).astype(np.int64)


class GroupSampler(Sampler):
    """Shuffle within each aspect group, pad each group to a multiple of ``samples_per_gpu`` (with random
    repeats), then shuffle the order of the resulting batches.

    Args:
        dataset: has ``flag`` (``(N,)`` group ids).
        samples_per_gpu: batch size; every consecutive chunk of this size comes from one group.
    """

    def __init__(self, dataset, samples_per_gpu: int = 1):
        self.dataset = dataset
        self.samples_per_gpu = samples_per_gpu
        self.flag = _group_flags(dataset)
        self.group_sizes = np.bincount(self.flag)
        self.num_samples = int(sum(math.ceil(size / samples_per_gpu) * samples_per_gpu for size in self.group_sizes))

    def __iter__(self):
        chunks = []
        for group, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            members = np.flatnonzero(self.flag == group)
            np.random.shuffle(members)
            num_extra = math.ceil(size / self.samples_per_gpu) * self.samples_per_gpu - len(members)
            chunks.append(np.concatenate([members, np.random.choice(members, num_extra)]))
        indices = np.concatenate(chunks).reshape(-1, self.samples_per_gpu)
        indices = indices[np.random.permutation(len(indices))].reshape(-1)
        return iter(indices.astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples


class DistributedGroupSampler(Sampler):
    """Distributed version of :class:`GroupSampler`: every rank gets ``num_samples`` indices whose
    consecutive ``samples_per_gpu`` chunks each come from one group.

    Args:
        dataset: has ``flag``.
        samples_per_gpu: per-GPU batch size.
        num_replicas, rank: default to ``torch.distributed``'s world size and rank.
        seed: base seed, shared by all ranks (a random one is broadcast from rank 0 when None).
    """

    def __init__(self, dataset, samples_per_gpu: int = 1, num_replicas: int | None = None,
                 rank: int | None = None, seed: int | None = 0):
        default_rank, default_world = get_dist_info()
        self.dataset = dataset
        self.samples_per_gpu = samples_per_gpu
        self.num_replicas = default_world if num_replicas is None else num_replicas
        self.rank = default_rank if rank is None else rank
        self.epoch = 0
        self.seed = sync_random_seed(seed)
        self.flag = _group_flags(dataset)
        self.group_sizes = np.bincount(self.flag)
        per_rank_chunks = [math.ceil(size / samples_per_gpu / self.num_replicas) for size in self.group_sizes]
        self.num_samples = int(sum(per_rank_chunks)) * samples_per_gpu
        self.total_size = self.num_samples * self.num_replicas

    def __iter__(self):
        g = torch.Generator()
        g.manual_seed(self.epoch + self.seed)
        parts = []
        for group, size in enumerate(self.group_sizes):
            if size == 0:
                continue
            members = np.flatnonzero(self.flag == group)
            members = members[torch.randperm(int(size), generator=g).numpy()]
            target = math.ceil(size / self.samples_per_gpu / self.num_replicas) * self.samples_per_gpu \
                * self.num_replicas
            # pad by cycling the permuted group (whole copies, then a prefix)
            parts.append(np.resize(members, target))
        indices = np.concatenate(parts).reshape(-1, self.samples_per_gpu)
        indices = indices[torch.randperm(len(indices), generator=g).numpy()].reshape(-1)
        offset = self.num_samples * self.rank
        return iter(indices[offset:offset + self.num_samples].astype(np.int64).tolist())

    def __len__(self) -> int:
        return self.num_samples

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
