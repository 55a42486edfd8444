"""``SmoothL1Loss`` and ``L1Loss`` of mmdetection 2.x."""
from __future__ import annotations

import torch
from torch import nn

from mmdet.registry import LOSSES

from .utils import resolve_reduction, weighted_loss


def _check_pair(pred: torch.Tensor, target: torch.Tensor, name: str) -> None:
    if pred.size() != target.size():
        raise ValueError(f"{name}: pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")


@weighted_loss
def smooth_l1_loss(pred: torch.Tensor, target: torch.Tensor, beta: float = 1.0) -> torch.Tensor:
    """Element-wise ``0.5 d^2 / beta`` if ``d < beta`` else ``d - 0.5 beta`` (``d = |pred - target|``)."""
    if beta <= 0:
        raise ValueError(f"smooth_l1_loss beta must be > 0, got {beta}")
    if target.numel() == 0:
        return pred.sum() * 0
    _check_pair(pred, target, "smooth_l1_loss")
    diff = torch.abs(pred - target)
    return torch.where(diff < beta, 0.5 * diff * diff / beta, diff - 0.5 * beta)


@weighted_loss
def l1_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Element-wise ``|pred - target|``."""
    if target.numel() == 0:
        return pred.sum() * 0
    _check_pair(pred, target, "l1_loss")
    return torch.abs(pred - target)


class _RegressionLoss(nn.Module):
    """Shared ``forward`` of the element-wise regression losses: weights, reduction, ``avg_factor``."""

    def __init__(self, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__()
        self.reduction = reduction
        self.loss_weight = loss_weight

    def _element_loss_kwargs(self) -> dict:
        return {}

    def forward(self, pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None, **kwargs) -> torch.Tensor:
        """``pred``, ``target``, ``weight``: same shape, e.g. ``(N, 4)``."""
        reduction = resolve_reduction(reduction_override, self.reduction)
        return self.loss_weight * self.element_loss(pred, target, weight, reduction=reduction,
                                                    avg_factor=avg_factor, **self._element_loss_kwargs(), **kwargs)


@LOSSES.register_module()
class SmoothL1Loss(_RegressionLoss):
    """Smooth L1 loss (``beta=1.0`` default; the cascade RPN uses ``1/9``)."""

    element_loss = staticmethod(smooth_l1_loss)

    def __init__(self, beta: float = 1.0, reduction: str = "mean", loss_weight: float = 1.0):
        super().__init__(reduction, loss_weight)
        self.beta = beta

    def _element_loss_kwargs(self) -> dict:
        return {"beta": self.beta}


@LOSSES.register_module()
class L1Loss(_RegressionLoss):
    """L1 loss."""

    element_loss = staticmethod(l1_loss)
