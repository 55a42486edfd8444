"""Anchor helpers of mmdetection 2.x ``mmdet.core.anchor.utils``."""
from __future__ import annotations

from typing import Sequence

import torch


def images_to_levels(target: Sequence[torch.Tensor], num_levels: Sequence[int]) -> list[torch.Tensor]:
    """Per-image targets ``[(N_anchors, ...)] * B`` -> per-level ``[(B, n_l, ...)]`` (``num_levels`` = ``[n_l]``)."""
    stacked = torch.stack(list(target), 0)
    return list(stacked.split(list(num_levels), dim=1))


def anchor_inside_flags(flat_anchors: torch.Tensor, valid_flags: torch.Tensor, img_shape: Sequence[int],
                        allowed_border: int = 0) -> torch.Tensor:
    """Valid anchors that also lie inside the image (up to ``allowed_border`` px).

    With ``allowed_border >= 0`` an anchor needs ``x1 >= -b``, ``y1 >= -b``, ``x2 < W + b``, ``y2 < H + b``
    (``img_shape = (H, W[, C])``); with ``allowed_border < 0`` every valid anchor counts.

    Args:
        flat_anchors: ``(N, 4)``.
        valid_flags: ``(N,)`` bool.

    Returns:
        ``(N,)`` bool.
    """
    if allowed_border < 0:
        return valid_flags
    img_h, img_w = img_shape[:2]
    return (valid_flags & (flat_anchors[:, 0] >= -allowed_border) & (flat_anchors[:, 1] >= -allowed_border)
            & (flat_anchors[:, 2] < img_w + allowed_border) & (flat_anchors[:, 3] < img_h + allowed_border))
