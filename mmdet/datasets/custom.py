"""``CustomDataset``: the mmdetection 2.x dataset base (middle-format annotations, filtering, aspect groups),
plus the training-time handling of unreadable samples.

Middle format (a ``.json`` or ``.pkl`` list), one dict per image::

    {'filename': 'a.jpg', 'width': 1280, 'height': 720,
     'ann': {'bboxes': (n, 4) float32 x1y1x2y2, 'labels': (n,) int64,
             'bboxes_ignore': (k, 4) float32 (optional), 'masks': [segmentation, ...] (optional)}}

Unreadable samples (see :class:`~mmdet.datasets.pipelines.SampleLoadError`: missing, empty, corrupt or
truncated file, decoded size different from the annotation): in training the sample is skipped with a
warning naming the file and the reason, and a random sample of the same aspect group takes its place; once
more than ``max_bad_sample_ratio`` of the samples have failed, :class:`TooManyBadSamplesError` stops the run
with a summary. Counting is per data-loading process (each DataLoader worker holds its own copy). In test mode
the error propagates: no sample is silently dropped from an evaluation.
"""
from __future__ import annotations

import json
import os.path as osp
import pickle
from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset

from mmdet.registry import DATASETS
from mmdet.utils.logger import get_root_logger

from .pipelines import Compose, SampleLoadError
from .pipelines.loading import check_disk_backend


class TooManyBadSamplesError(RuntimeError):
    """More than ``max_bad_sample_ratio`` of a training dataset could not be loaded."""


def _join_root(data_root: str | None, path: str | None) -> str | None:
    if data_root is None or path is None or osp.isabs(path):
        return path
    return osp.join(data_root, path)


def _load_file(path: str):
    if path.endswith(".json"):
        with open(path) as f:
            return json.load(f)
    if path.endswith((".pkl", ".pickle")):
        with open(path, "rb") as f:
            return pickle.load(f)
    raise ValueError(f"cannot load '{path}': only .json and .pkl/.pickle annotation files are supported")


@DATASETS.register_module()
class CustomDataset(Dataset):
    """Detection dataset base class (mmdetection 2.x ``CustomDataset``).

    Args:
        ann_file: annotation file (joined to ``data_root`` when relative).
        pipeline: list of transform configs.
        classes: None (use ``CLASSES``), a tuple/list of names, or a text file with one name per line.
        data_root: prefix for the relative ``ann_file``, ``img_prefix``, ``seg_prefix``, ``proposal_file``.
        img_prefix: folder of the images.
        seg_prefix: folder of semantic maps.
        seg_suffix: file suffix of semantic maps.
        proposal_file: pickled list of per-image proposal arrays.
        test_mode: no filtering, no group flags, unreadable images raise.
        filter_empty_gt: in training, drop images without usable annotations.
        file_client_args: only ``dict(backend='disk')``.
        max_bad_sample_ratio: in training, the share of samples that may fail to load (skipped with a warning)
            before :class:`TooManyBadSamplesError` stops the run; 0 stops at the first bad sample.
    """

    CLASSES = None
    PALETTE = None

    def __init__(self, ann_file, pipeline, classes=None, data_root=None, img_prefix="", seg_prefix=None,
                 seg_suffix=".png", proposal_file=None, test_mode=False, filter_empty_gt=True,
                 file_client_args=None, max_bad_sample_ratio=0.1):
        check_disk_backend(file_client_args)
        if not 0 <= max_bad_sample_ratio <= 1:
            raise ValueError(f"max_bad_sample_ratio must lie in [0, 1], got {max_bad_sample_ratio}")
        self.data_root = data_root
        self.ann_file = _join_root(data_root, ann_file)
        self.img_prefix = _join_root(data_root, img_prefix) if img_prefix else img_prefix
        self.seg_prefix = _join_root(data_root, seg_prefix)
        self.seg_suffix = seg_suffix
        self.proposal_file = _join_root(data_root, proposal_file)
        self.test_mode = test_mode
        self.filter_empty_gt = filter_empty_gt
        self.max_bad_sample_ratio = max_bad_sample_ratio
        self.CLASSES = self.get_classes(classes)
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f"annotation file '{self.ann_file}' does not exist (check ann_file / data_root)")
        self.data_infos = self.load_annotations(self.ann_file)
        self.proposals = self.load_proposals(self.proposal_file) if self.proposal_file is not None else None
        if self.proposals is not None and len(self.proposals) != len(self.data_infos):
            raise ValueError(f"'{self.proposal_file}' holds {len(self.proposals)} proposal sets for "
                             f"{len(self.data_infos)} images")
        if not test_mode:
            valid_inds = self._filter_imgs()
            self.data_infos = [self.data_infos[i] for i in valid_inds]
            if self.proposals is not None:
                self.proposals = [self.proposals[i] for i in valid_inds]
            self._set_group_flag()
        self.pipeline = Compose(pipeline)
        self.bad_samples: dict[int, str] = {}

    def __len__(self) -> int:
        return len(self.data_infos)

    def load_annotations(self, ann_file: str) -> list[dict]:
        infos = _load_file(ann_file)
        if not isinstance(infos, list):
            raise ValueError(f"'{ann_file}' must hold a list of image dicts (mmdet middle format)")
        return infos

    def load_proposals(self, proposal_file: str):
        return _load_file(proposal_file)

    def get_ann_info(self, idx: int) -> dict:
        return self.data_infos[idx]["ann"]

    def get_cat_ids(self, idx: int) -> list[int]:
        return self.data_infos[idx]["ann"]["labels"].astype(np.int64).tolist()

    def pre_pipeline(self, results: dict) -> None:
        results["img_prefix"] = self.img_prefix
        results["seg_prefix"] = self.seg_prefix
        results["proposal_file"] = self.proposal_file
        results["bbox_fields"] = []
        results["mask_fields"] = []
        results["seg_fields"] = []

    def _filter_imgs(self, min_size: int = 32) -> list[int]:
        """Indices of images with both sides >= ``min_size`` (and annotations, if ``filter_empty_gt``)."""
        valid = []
        for i, info in enumerate(self.data_infos):
            if self.filter_empty_gt and len(info["ann"]["labels"]) == 0:
                continue
            if min(info["width"], info["height"]) >= min_size:
                valid.append(i)
        return valid

    def _set_group_flag(self) -> None:
        """``flag[i] = 1`` for landscape images (``w / h > 1``), else 0 (samplers batch within a group)."""
        widths = np.array([info["width"] for info in self.data_infos], dtype=np.float64)
        heights = np.array([info["height"] for info in self.data_infos], dtype=np.float64)
        self.flag = (widths / np.maximum(heights, 1e-9) > 1).astype(np.uint8)

    def _rand_another(self, idx: int) -> int:
        """A random index of the same aspect group as ``idx``, avoiding samples known to be unreadable."""
        pool = np.flatnonzero(self.flag == self.flag[idx])
        if self.bad_samples:
            pool = pool[~np.isin(pool, list(self.bad_samples))]
        if len(pool) == 0:
            raise TooManyBadSamplesError(
                f"every sample of aspect group {int(self.flag[idx])} in '{self.ann_file}' is unreadable: "
                f"{self._bad_summary()}")
        return int(np.random.choice(pool))

    def _bad_summary(self, limit: int = 5) -> str:
        items = list(self.bad_samples.values())
        more = f" ... and {len(items) - limit} more" if len(items) > limit else ""
        return "; ".join(items[:limit]) + more

    def _record_bad_sample(self, idx: int, err: SampleLoadError) -> None:
        if idx in self.bad_samples:
            return
        self.bad_samples[idx] = f"'{err.filename}': {err.reason}"
        get_root_logger().warning(f"skipping training sample {idx}: image '{err.filename}' cannot be used "
                                  f"({err.reason}); a random sample of the same aspect group replaces it")
        if len(self.bad_samples) > self.max_bad_sample_ratio * len(self):
            raise TooManyBadSamplesError(
                f"{len(self.bad_samples)} of {len(self)} training samples of '{self.ann_file}' "
                f"({len(self.bad_samples) / len(self):.1%}) could not be loaded, more than "
                f"max_bad_sample_ratio={self.max_bad_sample_ratio}: {self._bad_summary()}. Fix or remove these "
                f"images, or raise max_bad_sample_ratio in the dataset config")

    def prepare_train_img(self, idx: int):
        results = dict(img_info=self.data_infos[idx], ann_info=self.get_ann_info(idx))
        if self.proposals is not None:
            results["proposals"] = self.proposals[idx]
        self.pre_pipeline(results)
        return self.pipeline(results)

    def prepare_test_img(self, idx: int):
        results = dict(img_info=self.data_infos[idx])
        if self.proposals is not None:
            results["proposals"] = self.proposals[idx]
        self.pre_pipeline(results)
        return self.pipeline(results)

    def __getitem__(self, idx: int):
        """Test mode: the pipeline output (a load error propagates, naming the file). Training: retry with
        another sample of the same group while the pipeline returns None or the sample is unreadable."""
        if self.test_mode:
            return self.prepare_test_img(idx)
        while True:
            try:
                data = self.prepare_train_img(idx)
            except SampleLoadError as err:
                self._record_bad_sample(idx, err)
                idx = self._rand_another(idx)
                continue
            if data is None:
                idx = self._rand_another(idx)
                continue
            return data

    @classmethod
    def get_classes(cls, classes=None):
        """``CLASSES`` for None, the names for a tuple/list, or the lines of a text file."""
        if classes is None:
            return cls.CLASSES
        if isinstance(classes, str):
            if not osp.isfile(classes):
                raise FileNotFoundError(f"classes file '{classes}' does not exist (expected one class name per line)")
            with open(classes) as f:
                return [line.strip() for line in f if line.strip()]
        if isinstance(classes, Sequence):
            return list(classes) if isinstance(classes, list) else tuple(classes)
        raise ValueError(f"classes must be None, a tuple/list of names or a text file path, got {type(classes).__name__}")

    def get_cat2imgs(self) -> dict[int, list[int]]:
        """Label (0 .. len(CLASSES) - 1) -> indices of the images that contain it.

        Read from ``get_ann_info(i)['labels']``: ``get_cat_ids`` returns dataset category ids (COCO's 1..90 for
        :class:`CocoDataset`, as mmdetection 2.x), which are not labels.
        """
        if self.CLASSES is None:
            raise ValueError("get_cat2imgs needs CLASSES (pass classes=...)")
        cat2imgs = {i: [] for i in range(len(self.CLASSES))}
        for i in range(len(self)):
            for label in set(self.get_ann_info(i)["labels"].tolist()):
                cat2imgs[int(label)].append(i)
        return cat2imgs

    def __repr__(self) -> str:
        mode = "Test" if self.test_mode else "Train"
        classes = "None" if self.CLASSES is None else len(self.CLASSES)
        return (f"{mode} dataset {type(self).__name__} with {len(self)} images, {classes} classes, "
                f"ann_file='{self.ann_file}'")
