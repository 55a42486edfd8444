"""``build_dataset`` (wrappers included) and ``build_dataloader`` with mmdetection 2.x semantics."""
from __future__ import annotations

import copy
import random
from functools import partial

import numpy as np
import torch
from torch.utils.data import DataLoader

from mmdet.engine.dist import get_dist_info
from mmdet.engine.registry import build_from_cfg
from mmdet.registry import DATASETS

from .collate import collate
from .dataset_wrappers import ClassBalancedDataset, ConcatDataset, RepeatDataset
from .samplers import (DistributedGroupSampler, DistributedSampler, GroupSampler, InfiniteBatchSampler,
                       InfiniteGroupBatchSampler)


def _concat_dataset(cfg: dict, default_args: dict | None = None) -> ConcatDataset:
    """A dataset config whose ``ann_file`` is a list -> one dataset per file, concatenated (per-file
    ``img_prefix``/``seg_prefix``/``proposal_file`` when those are lists too)."""
    ann_files = cfg["ann_file"]
    datasets = []
    for i, ann_file in enumerate(ann_files):
        one = copy.deepcopy(dict(cfg))
        one.pop("separate_eval", None)
        one["ann_file"] = ann_file
        for key in ("img_prefix", "seg_prefix", "proposal_file"):
            if isinstance(cfg.get(key), (list, tuple)):
                one[key] = cfg[key][i]
        datasets.append(build_dataset(one, default_args))
    return ConcatDataset(datasets, cfg.get("separate_eval", True))


def build_dataset(cfg, default_args: dict | None = None):
    """Build a dataset from its config: a list/tuple of configs or ``ConcatDataset`` -> concatenation,
    ``RepeatDataset``/``ClassBalancedDataset`` -> wrapper around the inner ``dataset``, otherwise the
    registered type (``default_args`` such as ``test_mode=True`` fill missing keys)."""
    if isinstance(cfg, (list, tuple)):
        return ConcatDataset([build_dataset(c, default_args) for c in cfg])
    kind = cfg["type"]
    if kind == "ConcatDataset":
        return ConcatDataset([build_dataset(c, default_args) for c in cfg["datasets"]], cfg.get("separate_eval", True))
    if kind == "RepeatDataset":
        return RepeatDataset(build_dataset(cfg["dataset"], default_args), cfg["times"])
    if kind == "ClassBalancedDataset":
        return ClassBalancedDataset(build_dataset(cfg["dataset"], default_args), cfg["oversample_thr"],
                                    cfg.get("filter_empty_gt", True))
    if isinstance(cfg.get("ann_file"), (list, tuple)):
        return _concat_dataset(cfg, default_args)
    return build_from_cfg(dict(cfg), DATASETS, default_args)


def worker_init_fn(worker_id: int, num_workers: int, rank: int, seed: int) -> None:
    """Seed numpy, ``random`` and torch of a worker with ``num_workers * rank + worker_id + seed``."""
    worker_seed = num_workers * rank + worker_id + seed
    np.random.seed(worker_seed)
    random.seed(worker_seed)
    torch.manual_seed(worker_seed)


def build_dataloader(dataset, samples_per_gpu: int, workers_per_gpu: int, num_gpus: int = 1, dist: bool = False,
                     shuffle: bool = True, seed: int | None = None, runner_type: str = "EpochBasedRunner",
                     persistent_workers: bool = False, **kwargs) -> DataLoader:
    """A ``DataLoader`` as mmdetection 2.x builds it.

    Args:
        dataset: the dataset (needs ``flag`` when ``shuffle``).
        samples_per_gpu: batch size per GPU.
        workers_per_gpu: loader processes per GPU.
        num_gpus: GPUs of a non-distributed run (batch = ``num_gpus * samples_per_gpu``).
        dist: distributed: per-rank batch ``samples_per_gpu``, :class:`DistributedGroupSampler` (shuffle) or
            :class:`DistributedSampler` (no shuffle).
        shuffle: group-aware shuffling; non-distributed uses :class:`GroupSampler`, else sequential order.
        seed: seeds the samplers and each worker (``num_workers * rank + worker_id + seed``).
        runner_type: 'IterBasedRunner' uses the infinite (group) batch samplers.
        persistent_workers: keep workers alive between epochs (only with ``workers_per_gpu > 0``).
        kwargs: passed to ``DataLoader`` (e.g. ``pin_memory``).

    Batches are collated with :func:`~mmdet.datasets.collate.collate` in chunks of ``samples_per_gpu``.
    """
    rank, world_size = get_dist_info()
    if dist:
        batch_size, num_workers = samples_per_gpu, workers_per_gpu
    else:
        batch_size, num_workers = num_gpus * samples_per_gpu, num_gpus * workers_per_gpu
    sampler = batch_sampler = None
    if runner_type == "IterBasedRunner":
        sampler_cls = InfiniteGroupBatchSampler if shuffle else InfiniteBatchSampler
        batch_sampler = sampler_cls(dataset, batch_size, world_size, rank, seed=seed)
        batch_size = 1
    elif dist:
        if shuffle:
            sampler = DistributedGroupSampler(dataset, samples_per_gpu, world_size, rank, seed=seed)
        else:
            sampler = DistributedSampler(dataset, world_size, rank, shuffle=False, seed=seed)
    elif shuffle:
        sampler = GroupSampler(dataset, samples_per_gpu)
    init_fn = partial(worker_init_fn, num_workers=num_workers, rank=rank, seed=seed) if seed is not None else None
    loader_args = dict(sampler=sampler, batch_sampler=batch_sampler, num_workers=num_workers,
                       collate_fn=partial(collate, samples_per_gpu=samples_per_gpu),
                       pin_memory=kwargs.pop("pin_memory", False), worker_init_fn=init_fn,
                       persistent_workers=persistent_workers and num_workers > 0, **kwargs)
    if batch_sampler is None:
        loader_args["batch_size"] = batch_size
    return DataLoader(dataset, **loader_args)
