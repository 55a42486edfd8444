"""Dataset wrappers (mmdetection 2.x): concatenation, repetition, class-balanced oversampling.

Each wrapper keeps ``CLASSES`` and an aspect-group ``flag`` consistent with its indices, so the group
samplers work on it unchanged.
"""
from __future__ import annotations

import bisect
import math
from collections import defaultdict

import numpy as np
from torch.utils.data.dataset import ConcatDataset as _TorchConcatDataset

from mmdet.registry import DATASETS
from mmdet.utils.logger import print_log

from .coco import CocoDataset


@DATASETS.register_module()
class ConcatDataset(_TorchConcatDataset):
    """Concatenate datasets; ``flag`` is concatenated too.

    Args:
        datasets: datasets to join (same classes expected).
        separate_eval: evaluate each part on its own (keys prefixed ``'{i}_'``). Whole-set evaluation is only
            possible for non-COCO datasets of one type.
    """

    def __init__(self, datasets, separate_eval: bool = True):
        super().__init__(datasets)
        self.CLASSES = datasets[0].CLASSES
        self.PALETTE = getattr(datasets[0], "PALETTE", None)
        self.separate_eval = separate_eval
        if not separate_eval:
            self._check_joint_eval()
        if hasattr(datasets[0], "flag"):
            self.flag = np.concatenate([ds.flag for ds in datasets])

    def _check_joint_eval(self) -> None:
        if any(isinstance(ds, CocoDataset) for ds in self.datasets):
            raise NotImplementedError("evaluating concatenated CocoDatasets as a whole is not supported; "
                                      "set separate_eval=True")
        if len({type(ds) for ds in self.datasets}) != 1:
            raise NotImplementedError("whole-set evaluation needs datasets of one type; set separate_eval=True")

    def _locate(self, idx: int) -> tuple[int, int]:
        if idx < 0:
            if -idx > len(self):
                raise IndexError(f"index {idx} out of range for a dataset of {len(self)}")
            idx = len(self) + idx
        ds_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        return ds_idx, idx - (self.cumulative_sizes[ds_idx - 1] if ds_idx > 0 else 0)

    def get_cat_ids(self, idx: int) -> list[int]:
        ds_idx, sample_idx = self._locate(idx)
        return self.datasets[ds_idx].get_cat_ids(sample_idx)

    def get_ann_info(self, idx: int) -> dict:
        ds_idx, sample_idx = self._locate(idx)
        return self.datasets[ds_idx].get_ann_info(sample_idx)

    def evaluate(self, results, logger=None, **kwargs) -> dict:
        if len(results) != self.cumulative_sizes[-1]:
            raise ValueError(f"got {len(results)} results for {self.cumulative_sizes[-1]} images")
        if self.separate_eval:
            total = {}
            starts = [0] + self.cumulative_sizes[:-1]
            for i, (ds, start, end) in enumerate(zip(self.datasets, starts, self.cumulative_sizes)):
                print_log(f"\nEvaluating {getattr(ds, 'ann_file', i)} with {end - start} images now", logger=logger)
                for k, v in ds.evaluate(results[start:end], logger=logger, **kwargs).items():
                    total[f"{i}_{k}"] = v
            return total
        self._check_joint_eval()
        first = self.datasets[0]
        original = first.data_infos
        first.data_infos = sum([ds.data_infos for ds in self.datasets], [])
        try:
            return first.evaluate(results, logger=logger, **kwargs)
        finally:
            first.data_infos = original


@DATASETS.register_module()
class RepeatDataset:
    """Repeat a dataset ``times`` times (index modulo its length; ``flag`` tiled), e.g. ViTDet ``times=4``."""

    def __init__(self, dataset, times: int):
        self.dataset = dataset
        self.times = int(times)
        self.CLASSES = dataset.CLASSES
        self.PALETTE = getattr(dataset, "PALETTE", None)
        if hasattr(dataset, "flag"):
            self.flag = np.tile(dataset.flag, self.times)
        self._ori_len = len(dataset)

    def __getitem__(self, idx: int):
        return self.dataset[idx % self._ori_len]

    def get_cat_ids(self, idx: int) -> list[int]:
        return self.dataset.get_cat_ids(idx % self._ori_len)

    def get_ann_info(self, idx: int) -> dict:
        return self.dataset.get_ann_info(idx % self._ori_len)

    def __len__(self) -> int:
        return self.times * self._ori_len


@DATASETS.register_module()
class ClassBalancedDataset:
    """Repeat images containing rare categories (LVIS-style repeat factor sampling).

    Category frequency ``f(c)`` = share of images containing ``c``; category repeat
    ``r(c) = max(1, sqrt(oversample_thr / f(c)))``; image repeat = ``ceil(max r(c))`` over its categories.

    Args:
        dataset: the dataset (needs ``get_cat_ids``).
        oversample_thr: frequency below which categories are oversampled.
        filter_empty_gt: if False, images without annotations count as an extra "background" category.
    """

    def __init__(self, dataset, oversample_thr: float, filter_empty_gt: bool = True):
        self.dataset = dataset
        self.oversample_thr = oversample_thr
        self.filter_empty_gt = filter_empty_gt
        self.CLASSES = dataset.CLASSES
        self.PALETTE = getattr(dataset, "PALETTE", None)
        factors = self._get_repeat_factors(dataset, oversample_thr)
        repeats = np.ceil(np.asarray(factors)).astype(np.int64)
        self.repeat_indices = np.repeat(np.arange(len(dataset)), repeats).tolist()
        if hasattr(dataset, "flag"):
            self.flag = np.repeat(np.asarray(dataset.flag), repeats).astype(np.uint8)

    def _image_cats(self, dataset, idx: int) -> set:
        cats = set(dataset.get_cat_ids(idx))
        if not cats and not self.filter_empty_gt:
            cats = {len(self.CLASSES)}
        return cats

    def _get_repeat_factors(self, dataset, repeat_thr: float) -> list[float]:
        image_cats = [self._image_cats(dataset, i) for i in range(len(dataset))]
        freq = defaultdict(int)
        for cats in image_cats:
            for c in cats:
                freq[c] += 1
        cat_repeat = {c: max(1.0, math.sqrt(repeat_thr / (n / len(dataset)))) for c, n in freq.items()}
        return [max(cat_repeat[c] for c in cats) if cats else 1.0 for cats in image_cats]

    def __getitem__(self, idx: int):
        return self.dataset[self.repeat_indices[idx]]

    def get_cat_ids(self, idx: int) -> list[int]:
        return self.dataset.get_cat_ids(self.repeat_indices[idx])

    def get_ann_info(self, idx: int) -> dict:
        return self.dataset.get_ann_info(self.repeat_indices[idx])

    def __len__(self) -> int:
        return len(self.repeat_indices)
