"""``IoULoss`` and ``GIoULoss`` of mmdetection 2.x (boxes ``(x1, y1, x2, y2)``, aligned pairs)."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from mmdet.core.bbox.iou_calculators import bbox_overlaps
from mmdet.registry import LOSSES

from .utils import resolve_reduction, weighted_loss


@weighted_loss
def iou_loss(pred: torch.Tensor, target: torch.Tensor, linear: bool = False, mode: str = "log",
             eps: float = 1e-6) -> torch.Tensor:
    """Per pair: ``-log(iou)`` (``'log'``), ``1 - iou`` (``'linear'``) or ``1 - iou^2`` (``'square'``); IoU >= eps."""
    if mode not in ("linear", "square", "log"):
        raise ValueError(f"iou_loss mode must be 'linear', 'square' or 'log', got {mode!r}")
    if linear:
        mode = "linear"
    ious = bbox_overlaps(pred, target, is_aligned=True).clamp(min=eps)
    if mode == "linear":
        return 1 - ious
    if mode == "square":
        return 1 - ious ** 2
    return -ious.log()


@weighted_loss
def giou_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = 1e-7) -> torch.Tensor:
    """Per pair ``1 - GIoU`` (union and enclosing area bounded below by ``eps``)."""
    return 1 - bbox_overlaps(pred, target, mode="giou", is_aligned=True, eps=eps)


class _BoxOverlapLoss(nn.Module):
    """Shared ``forward``: an all-zero ``weight`` short-cuts to a zero loss that keeps the graph."""

    def __init__(self, eps: float, reduction: str, loss_weight: float):
        super().__init__()
        self.eps = eps
        self.reduction = reduction
        self.loss_weight = loss_weight

    def _element_loss_kwargs(self) -> dict:
        return {"eps": self.eps}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None, **kwargs) -> torch.Tensor:
        """``pred``, ``target``: ``(N, 4)`` boxes; ``weight``: ``(N,)`` or ``(N, 4)`` (averaged over the 4)."""
        reduction = resolve_reduction(reduction_override, self.reduction)
        if weight is not None and not torch.any(weight > 0) and reduction != "none":
            if pred.dim() == weight.dim() + 1:
                weight = weight.unsqueeze(1)
            return (pred * weight).sum()
        if weight is not None and weight.dim() > 1:
            if weight.shape != pred.shape:
                raise ValueError(f"{type(self).__name__}: weight {tuple(weight.shape)} must be (N,) or match "
                                 f"pred {tuple(pred.shape)}")
            weight = weight.mean(-1)
        return self.loss_weight * self.element_loss(pred, target, weight, reduction=reduction,
                                                    avg_factor=avg_factor, **self._element_loss_kwargs(), **kwargs)


@LOSSES.register_module()
class IoULoss(_BoxOverlapLoss):
    """IoU loss; ``mode`` ``'log'`` (default), ``'linear'`` or ``'square'`` (``linear=True`` is the old flag)."""

    element_loss = staticmethod(iou_loss)

    def __init__(self, linear: bool = False, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0,
                 mode: str = "log"):
        super().__init__(eps, reduction, loss_weight)
        if mode not in ("linear", "square", "log"):
            raise ValueError(f"IoULoss mode must be 'linear', 'square' or 'log', got {mode!r}")
        if linear:
            warnings.warn("IoULoss linear=True is deprecated; use mode='linear'", UserWarning)
            mode = "linear"
        self.mode = mode

    def _element_loss_kwargs(self) -> dict:
        return {"eps": self.eps, "mode": self.mode}


@LOSSES.register_module()
class GIoULoss(_BoxOverlapLoss):
    """Generalised IoU loss ``1 - GIoU`` (seed cascade heads: ``loss_weight=10``)."""

    element_loss = staticmethod(giou_loss)

    def __init__(self, eps: float = 1e-6, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(eps, reduction, loss_weight)
