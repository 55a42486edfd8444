"""2-D box overlaps (mmdetection 2.x ``BboxOverlaps2D`` / ``bbox_overlaps``).

Boxes are ``(x1, y1, x2, y2)``; width is ``x2 - x1`` (no +1).
"""
from __future__ import annotations

import torch

from mmdet.registry import IOU_CALCULATORS


def _clamp_min0(x: torch.Tensor) -> torch.Tensor:
    """``clamp(min=0)``; CPU half tensors are clamped in float32 (no half clamp kernel on CPU)."""
    if not x.is_cuda and x.dtype == torch.float16:
        return x.float().clamp(min=0).half()
    return x.clamp(min=0)


def bbox_overlaps(bboxes1: torch.Tensor, bboxes2: torch.Tensor, mode: str = "iou", is_aligned: bool = False,
                  eps: float = 1e-6) -> torch.Tensor:
    """IoU / IoF / GIoU between two sets of boxes.

    Args:
        bboxes1: ``(..., M, 4)`` boxes (or empty).
        bboxes2: ``(..., N, 4)`` boxes (or empty); leading dims broadcast with ``bboxes1``'s.
        mode: ``'iou'``, ``'iof'`` (intersection over the area of ``bboxes1``) or ``'giou'``.
        is_aligned: pairwise ``i <-> i`` (needs ``M == N``) instead of all pairs.
        eps: lower bound of the union (and of the enclosing area for GIoU).

    Returns:
        ``(..., M, N)`` or, when aligned, ``(..., M)``.
    """
    if mode not in ("iou", "iof", "giou"):
        raise ValueError(f"bbox_overlaps mode must be 'iou', 'iof' or 'giou', got {mode!r}")
    if not (bboxes1.size(-1) == 4 or bboxes1.size(0) == 0) or not (bboxes2.size(-1) == 4 or bboxes2.size(0) == 0):
        raise ValueError(f"bbox_overlaps needs (..., 4) boxes, got {tuple(bboxes1.shape)} and {tuple(bboxes2.shape)}")
    batch_shape = bboxes1.shape[:-2]
    rows, cols = bboxes1.size(-2), bboxes2.size(-2)
    if is_aligned and rows != cols:
        raise ValueError(f"bbox_overlaps(is_aligned=True) needs equal counts, got {rows} and {cols}")
    if rows * cols == 0:
        return bboxes1.new_zeros(batch_shape + ((rows,) if is_aligned else (rows, cols)))

    area1 = (bboxes1[..., 2] - bboxes1[..., 0]) * (bboxes1[..., 3] - bboxes1[..., 1])
    area2 = (bboxes2[..., 2] - bboxes2[..., 0]) * (bboxes2[..., 3] - bboxes2[..., 1])
    if is_aligned:
        b1, b2 = bboxes1, bboxes2
        a1, a2 = area1, area2
    else:  # broadcast to (..., M, N, 4) / (..., M, N)
        b1, b2 = bboxes1[..., :, None, :], bboxes2[..., None, :, :]
        a1, a2 = area1[..., :, None], area2[..., None, :]
    lt = torch.max(b1[..., :2], b2[..., :2])
    rb = torch.min(b1[..., 2:], b2[..., 2:])
    wh = _clamp_min0(rb - lt)
    overlap = wh[..., 0] * wh[..., 1]
    union = a1 + a2 - overlap if mode in ("iou", "giou") else a1.expand_as(overlap)
    eps_t = union.new_tensor([eps])
    union = torch.max(union, eps_t)
    ious = overlap / union
    if mode != "giou":
        return ious
    enclose_wh = _clamp_min0(torch.max(b1[..., 2:], b2[..., 2:]) - torch.min(b1[..., :2], b2[..., :2]))
    enclose_area = torch.max(enclose_wh[..., 0] * enclose_wh[..., 1], eps_t)
    return ious - (enclose_area - union) / enclose_area


@IOU_CALCULATORS.register_module()
class BboxOverlaps2D:
    """Callable IoU calculator used by the assigners.

    Args:
        scale: boxes are divided by it before an ``'fp16'`` computation (to stay in half range).
        dtype: ``None`` (input precision) or ``'fp16'``.
    """

    def __init__(self, scale: float = 1.0, dtype: str | None = None):
        self.scale = scale
        self.dtype = dtype

    def __call__(self, bboxes1: torch.Tensor, bboxes2: torch.Tensor, mode: str = "iou",
                 is_aligned: bool = False) -> torch.Tensor:
        """``bboxes1`` ``(M, 4|5)``, ``bboxes2`` ``(N, 4|5)`` (a 5th score column is ignored) -> ``(M, N)``."""
        for name, b in (("bboxes1", bboxes1), ("bboxes2", bboxes2)):
            if b.size(-1) not in (0, 4, 5):
                raise ValueError(f"BboxOverlaps2D: {name} must have 4 or 5 columns, got shape {tuple(b.shape)}")
        bboxes1, bboxes2 = bboxes1[..., :4], bboxes2[..., :4]
        if self.dtype == "fp16":
            out = bbox_overlaps((bboxes1 / self.scale).half(), (bboxes2 / self.scale).half(), mode, is_aligned)
            if not out.is_cuda and out.dtype == torch.float16:
                out = out.float()
            return out
        return bbox_overlaps(bboxes1, bboxes2, mode, is_aligned)

    def __repr__(self) -> str:
        return f"{self.__class__.__name__}(scale={self.scale}, dtype={self.dtype})"
