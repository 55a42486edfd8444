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

    x11, y11, x12, y12 = bboxes1.unbind(-1)
    x21, y21, x22, y22 = bboxes2.unbind(-1)
    area1 = (x12 - x11) * (y12 - y11)
    area2 = (x22 - x21) * (y22 - y21)
    if not is_aligned:  # broadcast every coordinate to (..., M, N): no (..., M, N, 2) temporaries
        x11, y11, x12, y12, area1 = (t[..., :, None] for t in (x11, y11, x12, y12, area1))
        x21, y21, x22, y22, area2 = (t[..., None, :] for t in (x21, y21, x22, y22, area2))
    eps_t = area1.new_tensor([eps])
    if mode != "giou" and not (torch.is_grad_enabled() and (bboxes1.requires_grad or bboxes2.requires_grad)):
        # assigner path (no autograd): same operations, in place on fresh buffers (less memory traffic)
        overlap = torch.minimum(x12, x22).sub_(torch.maximum(x11, x21)).clamp_(min=0)
        overlap.mul_(torch.minimum(y12, y22).sub_(torch.maximum(y11, y21)).clamp_(min=0))
        union = (area1 + area2).sub_(overlap) if mode == "iou" else area1.expand_as(overlap).clone()
        return overlap.div_(union.clamp_(min=eps))
    overlap = (_clamp_min0(torch.min(x12, x22) - torch.max(x11, x21))
               * _clamp_min0(torch.min(y12, y22) - torch.max(y11, y21)))
    union = area1 + area2 - overlap if mode in ("iou", "giou") else area1.expand_as(overlap)
    union = torch.max(union, eps_t)
    ious = overlap / union
    if mode != "giou":
        return ious
    enclose_area = (_clamp_min0(torch.max(x12, x22) - torch.min(x11, x21))
                    * _clamp_min0(torch.max(y12, y22) - torch.min(y11, y21)))
    enclose_area = torch.max(enclose_area, eps_t)
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
