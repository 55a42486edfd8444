"""Merging of test-time-augmentation results (mmdetection 2.x ``merge_augs``)."""
from __future__ import annotations

import copy
import warnings
from typing import Sequence

import numpy as np
import torch
from torchvision.ops import nms as tv_nms

from ..bbox.transforms import bbox_mapping_back


def upgrade_rpn_test_cfg(cfg: dict) -> dict:
    """Map the deprecated RPN keys ``nms_thr`` / ``max_num`` onto ``nms.iou_threshold`` / ``max_per_img``."""
    cfg = copy.deepcopy(dict(cfg))
    if "nms_thr" in cfg:
        warnings.warn("test_cfg.rpn 'nms_thr' is deprecated; use nms=dict(type='nms', iou_threshold=...)",
                      UserWarning)
        if "nms" in cfg and cfg["nms"]["iou_threshold"] != cfg["nms_thr"]:
            raise ValueError(f"test_cfg.rpn gives nms_thr={cfg['nms_thr']} and nms.iou_threshold="
                             f"{cfg['nms']['iou_threshold']}; keep only nms=dict(type='nms', iou_threshold=...)")
        cfg["nms"] = dict(type="nms", iou_threshold=cfg.pop("nms_thr"))
    if "max_num" in cfg:
        warnings.warn("test_cfg.rpn 'max_num' is deprecated; use max_per_img", UserWarning)
        if "max_per_img" in cfg and cfg["max_per_img"] != cfg["max_num"]:
            raise ValueError(f"test_cfg.rpn gives max_num={cfg['max_num']} and max_per_img="
                             f"{cfg['max_per_img']}; keep only max_per_img")
        cfg["max_per_img"] = cfg.pop("max_num")
    return cfg


def merge_aug_proposals(aug_proposals: Sequence[torch.Tensor], img_metas: Sequence[dict], cfg: dict) -> torch.Tensor:
    """Merge one image's RPN proposals from several augmentations.

    Each ``(n_i, 5)`` set is mapped back to the original image (un-flip, divide by ``scale_factor``), all are
    concatenated, NMS'ed with ``cfg['nms']['iou_threshold']`` and the top ``cfg['max_per_img']`` kept.

    Returns:
        ``(K, 5)`` proposals in original-image coordinates, score descending.
    """
    cfg = upgrade_rpn_test_cfg(cfg)
    recovered = []
    for proposals, img_info in zip(aug_proposals, img_metas):
        mapped = proposals.clone()
        mapped[:, :4] = bbox_mapping_back(mapped[:, :4], img_info["img_shape"], img_info["scale_factor"],
                                          img_info["flip"], img_info.get("flip_direction", "horizontal"))
        recovered.append(mapped)
    proposals = torch.cat(recovered, dim=0)
    keep = tv_nms(proposals[:, :4].contiguous(), proposals[:, -1].contiguous(), float(cfg["nms"]["iou_threshold"]))
    merged = proposals[keep]
    order = merged[:, 4].sort(0, descending=True)[1][:min(cfg["max_per_img"], merged.shape[0])]
    return merged[order, :]


def merge_aug_bboxes(aug_bboxes: Sequence[torch.Tensor], aug_scores: Sequence[torch.Tensor] | None,
                     img_metas: Sequence[Sequence[dict]], rcnn_test_cfg=None):
    """Average boxes (mapped back to the original image) and scores over augmentations.

    Args:
        aug_bboxes: per augmentation ``(N, 4k)`` boxes of the same rois.
        aug_scores: per augmentation ``(N, C+1)`` scores, or None.
        img_metas: per augmentation a list whose first dict describes the augmentation.

    Returns:
        ``bboxes`` ``(N, 4k)`` (and ``scores`` ``(N, C+1)`` when given).
    """
    recovered = []
    for bboxes, img_info in zip(aug_bboxes, img_metas):
        meta = img_info[0]
        recovered.append(bbox_mapping_back(bboxes, meta["img_shape"], meta["scale_factor"], meta["flip"],
                                           meta.get("flip_direction", "horizontal")))
    bboxes = torch.stack(recovered).mean(dim=0)
    if aug_scores is None:
        return bboxes
    return bboxes, torch.stack(list(aug_scores)).mean(dim=0)


def merge_aug_scores(aug_scores):
    """Mean over augmentations of tensors (``torch.stack``) or arrays (``np.mean``)."""
    if isinstance(aug_scores[0], torch.Tensor):
        return torch.mean(torch.stack(list(aug_scores)), dim=0)
    return np.mean(aug_scores, axis=0)


_FLIP_AXES = {"horizontal": (-1,), "vertical": (-2,), "diagonal": (-2, -1)}


def merge_aug_masks(aug_masks, img_metas: Sequence[Sequence[dict]], rcnn_test_cfg=None, weights=None):
    """Un-flip and average mask probabilities over augmentations (or cascade stages).

    Args:
        aug_masks: per augmentation ``(N, C, h, w)`` numpy arrays or tensors.
        img_metas: per augmentation a list whose first dict holds ``flip`` / ``flip_direction``.
        weights: optional per-augmentation weights (weighted average).

    Returns:
        ``(N, C, h, w)`` merged masks of the input type.
    """
    recovered = []
    for mask, img_info in zip(aug_masks, img_metas):
        meta = img_info[0]
        if meta.get("flip", False):
            direction = meta.get("flip_direction", "horizontal")
            if direction not in _FLIP_AXES:
                raise ValueError(f"merge_aug_masks: unknown flip_direction {direction!r}")
            axes = _FLIP_AXES[direction]
            mask = mask.flip(axes) if isinstance(mask, torch.Tensor) else np.flip(mask, axes)
        recovered.append(mask)
    if isinstance(recovered[0], torch.Tensor):
        stacked = torch.stack(recovered)
        if weights is None:
            return stacked.mean(dim=0)
        w = stacked.new_tensor(weights).view(-1, *([1] * (stacked.dim() - 1)))
        return (stacked * w).sum(dim=0) / w.sum()
    if weights is None:
        return np.mean(recovered, axis=0)
    return np.average(np.array(recovered), axis=0, weights=np.array(weights))
