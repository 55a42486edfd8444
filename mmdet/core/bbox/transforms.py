"""Box format conversions of mmdetection 2.x ``mmdet.core.bbox.transforms``."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch


FLIP_DIRECTIONS = ("horizontal", "vertical", "diagonal")


def bbox_flip(bboxes: torch.Tensor | np.ndarray, img_shape: Sequence[int],
              direction: str = "horizontal") -> torch.Tensor | np.ndarray:
    """Flip boxes ``(..., 4k)`` (tensor or numpy array; same type out) inside an image of ``img_shape``
    ``(H, W[, C])``.

    ``horizontal``: ``x1' = W - x2``, ``x2' = W - x1``; ``vertical`` likewise with ``H``; ``diagonal``: both.
    """
    if bboxes.shape[-1] % 4 != 0:
        raise ValueError(f"bbox_flip needs (..., 4k) boxes, got shape {tuple(bboxes.shape)}")
    if direction not in FLIP_DIRECTIONS:
        raise ValueError(f"flip direction must be one of {FLIP_DIRECTIONS}, got {direction!r}")
    flipped = bboxes.copy() if isinstance(bboxes, np.ndarray) else bboxes.clone()
    if direction in ("horizontal", "diagonal"):
        flipped[..., 0::4] = img_shape[1] - bboxes[..., 2::4]
        flipped[..., 2::4] = img_shape[1] - bboxes[..., 0::4]
    if direction in ("vertical", "diagonal"):
        flipped[..., 1::4] = img_shape[0] - bboxes[..., 3::4]
        flipped[..., 3::4] = img_shape[0] - bboxes[..., 1::4]
    return flipped


def bbox_mapping(bboxes: torch.Tensor, img_shape: Sequence[int], scale_factor, flip: bool,
                 flip_direction: str = "horizontal") -> torch.Tensor:
    """Original-image boxes ``(N, 4)`` -> test-time-augmented image (scale, then flip)."""
    new_bboxes = bboxes * bboxes.new_tensor(scale_factor)
    return bbox_flip(new_bboxes, img_shape, flip_direction) if flip else new_bboxes


def bbox_mapping_back(bboxes: torch.Tensor, img_shape: Sequence[int], scale_factor, flip: bool,
                      flip_direction: str = "horizontal") -> torch.Tensor:
    """Augmented-image boxes ``(..., 4)`` -> original image (un-flip, then divide by ``scale_factor``)."""
    new_bboxes = bbox_flip(bboxes, img_shape, flip_direction) if flip else bboxes
    new_bboxes = new_bboxes.reshape(-1, 4) / new_bboxes.new_tensor(scale_factor)
    return new_bboxes.view(bboxes.shape)


def bbox2roi(bbox_list: Sequence[torch.Tensor]) -> torch.Tensor:
    """Per-image boxes ``[(n_i, 4+)]`` -> rois ``(sum n_i, 5)`` = ``[batch_index, x1, y1, x2, y2]``."""
    rois_list = []
    for img_id, bboxes in enumerate(bbox_list):
        img_inds = bboxes.new_full((bboxes.size(0), 1), img_id)
        rois_list.append(torch.cat([img_inds, bboxes[:, :4]], dim=-1))
    return torch.cat(rois_list, 0)


def roi2bbox(rois: torch.Tensor) -> list[torch.Tensor]:
    """Rois ``(n, 5)`` -> one ``(n_i, 4)`` tensor per batch index present (ascending)."""
    return [rois[rois[:, 0] == img_id, 1:] for img_id in rois[:, 0].unique(sorted=True)]


def bbox2result(bboxes, labels, num_classes: int) -> list[np.ndarray]:
    """Detections ``(n, 5)`` with labels ``(n,)`` -> list of ``num_classes`` float32 arrays ``(n_c, 5)``."""
    if bboxes.shape[0] == 0:
        return [np.zeros((0, 5), dtype=np.float32) for _ in range(num_classes)]
    if isinstance(bboxes, torch.Tensor):
        bboxes = bboxes.detach().cpu().numpy()
        labels = labels.detach().cpu().numpy()
    return [bboxes[labels == i, :] for i in range(num_classes)]


def bbox_xyxy_to_cxcywh(bbox: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` corners -> ``(cx, cy, w, h)``."""
    x1, y1, x2, y2 = bbox.split((1, 1, 1, 1), dim=-1)
    return torch.cat([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], dim=-1)


def bbox_cxcywh_to_xyxy(bbox: torch.Tensor) -> torch.Tensor:
    """``(..., 4)`` ``(cx, cy, w, h)`` -> corners."""
    cx, cy, w, h = bbox.split((1, 1, 1, 1), dim=-1)
    return torch.cat([cx - 0.5 * w, cy - 0.5 * h, cx + 0.5 * w, cy + 0.5 * h], dim=-1)
