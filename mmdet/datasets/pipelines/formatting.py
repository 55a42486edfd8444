"""Formatting transforms: arrays -> tensors wrapped in :class:`DataContainer`, and ``Collect`` (mmdetection 2.x)."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mmdet.registry import PIPELINES

from ..collate import DataContainer

DEFAULT_META_KEYS = ("filename", "ori_filename", "ori_shape", "img_shape", "pad_shape", "scale_factor", "flip",
                     "flip_direction", "img_norm_cfg")


def to_tensor(data) -> torch.Tensor:
    """Tensor / ndarray / sequence / int / float -> ``torch.Tensor`` (arrays are shared, not copied)."""
    if isinstance(data, torch.Tensor):
        return data
    if isinstance(data, np.ndarray):
        return torch.from_numpy(data)
    if isinstance(data, Sequence) and not isinstance(data, str):
        return torch.tensor(data)
    if isinstance(data, (int, np.integer)) and not isinstance(data, bool):
        return torch.LongTensor([int(data)])
    if isinstance(data, (float, np.floating)):
        return torch.FloatTensor([float(data)])
    raise TypeError(f"type {type(data).__name__} cannot be converted to a tensor")


def _image_to_chw(img: np.ndarray) -> np.ndarray:
    if img.ndim < 3:
        img = img[..., None]
    return np.ascontiguousarray(img.transpose(2, 0, 1))


@PIPELINES.register_module()
class ToTensor:
    """Convert ``results[key]`` to tensors for each key."""

    def __init__(self, keys):
        self.keys = keys

    def __call__(self, results: dict) -> dict:
        for key in self.keys:
            results[key] = self.convert(results[key])
        return results

    @staticmethod
    def convert(value):
        """One value -> tensor (:func:`to_tensor`)."""
        return to_tensor(value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys})"


@PIPELINES.register_module()
class ImageToTensor(ToTensor):
    """``(H, W, C)`` image -> ``(C, H, W)`` tensor for each key (grayscale gets a channel dim)."""

    @staticmethod
    def convert(img: np.ndarray):
        return to_tensor(_image_to_chw(img))


@PIPELINES.register_module()
class DefaultFormatBundle:
    """Wrap the usual training fields in :class:`DataContainer` (mmdet 2.28 ``DefaultFormatBundle``).

    * ``img``: float32 (if ``img_to_float``) ``(C, H, W)`` tensor, ``stack=True``, padded with ``pad_val['img']``;
    * ``proposals``, ``gt_bboxes``, ``gt_bboxes_ignore``, ``gt_labels``: tensors;
    * ``gt_masks``: the mask structure, ``cpu_only=True``;
    * ``gt_semantic_seg``: ``(1, H, W)`` tensor, ``stack=True``, padded with ``pad_val['seg']``.

    Also fills ``pad_shape``, ``scale_factor`` (1.0) and ``img_norm_cfg`` (identity) when absent.
    """

    def __init__(self, img_to_float: bool = True, pad_val=None):
        self.img_to_float = img_to_float
        self.pad_val = pad_val if pad_val is not None else dict(img=0, masks=0, seg=255)

    def __call__(self, results: dict) -> dict:
        if "img" in results:
            img = results["img"]
            if self.img_to_float and img.dtype == np.uint8:
                img = img.astype(np.float32)
            results.setdefault("pad_shape", img.shape)
            results.setdefault("scale_factor", 1.0)
            channels = 1 if img.ndim < 3 else img.shape[2]
            results.setdefault("img_norm_cfg", dict(mean=np.zeros(channels, dtype=np.float32),
                                                    std=np.ones(channels, dtype=np.float32), to_rgb=False))
            results["img"] = DataContainer(to_tensor(_image_to_chw(img)), padding_value=self.pad_val["img"],
                                           stack=True)
        for key in ("proposals", "gt_bboxes", "gt_bboxes_ignore", "gt_labels"):
            if key in results:
                results[key] = DataContainer(to_tensor(results[key]))
        if "gt_masks" in results:
            results["gt_masks"] = DataContainer(results["gt_masks"], padding_value=self.pad_val["masks"],
                                                cpu_only=True)
        if "gt_semantic_seg" in results:
            results["gt_semantic_seg"] = DataContainer(to_tensor(results["gt_semantic_seg"][None, ...].copy()),
                                                       padding_value=self.pad_val["seg"], stack=True)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(img_to_float={self.img_to_float})"


@PIPELINES.register_module()
class Collect:
    """Keep ``keys`` and gather ``meta_keys`` into ``img_metas`` (a ``cpu_only`` :class:`DataContainer`)."""

    def __init__(self, keys, meta_keys=DEFAULT_META_KEYS):
        self.keys = keys
        self.meta_keys = meta_keys

    def __call__(self, results: dict) -> dict:
        missing = [k for k in self.meta_keys if k not in results]
        if missing:
            raise KeyError(f"Collect: meta keys {missing} are not in the results (set by earlier transforms: "
                           f"{sorted(results)}); remove them from meta_keys or add the transform that sets them")
        data = {"img_metas": DataContainer({k: results[k] for k in self.meta_keys}, cpu_only=True)}
        for key in self.keys:
            if key not in results:
                raise KeyError(f"Collect: key {key!r} is not in the results (available: {sorted(results)})")
            data[key] = results[key]
        return data

    def __repr__(self) -> str:
        return f"{type(self).__name__}(keys={self.keys}, meta_keys={self.meta_keys})"
