"""Loss reduction helpers of mmdetection 2.x (``weight_reduce_loss``, ``weighted_loss``)."""
from __future__ import annotations

import functools

import torch

_REDUCTIONS = ("none", "mean", "sum")


def reduce_loss(loss: torch.Tensor, reduction: str) -> torch.Tensor:
    """``'none'`` -> as is, ``'mean'`` -> mean of all elements, ``'sum'`` -> sum."""
    if reduction not in _REDUCTIONS:
        raise ValueError(f"loss reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    return loss


def resolve_reduction(reduction_override: str | None, default: str) -> str:
    """A loss module's ``reduction_override`` argument (checked) or, when None/empty, its ``default``."""
    if reduction_override not in (None, *_REDUCTIONS):
        raise ValueError(f"reduction_override must be None/'none'/'mean'/'sum', got {reduction_override!r}")
    return reduction_override if reduction_override else default


def weight_reduce_loss(loss: torch.Tensor, weight: torch.Tensor | None = None, reduction: str = "mean",
                       avg_factor: float | None = None) -> torch.Tensor:
    """Multiply by element weights, then reduce.

    With ``avg_factor`` and ``reduction='mean'`` the result is ``sum(loss) / (avg_factor + eps)``
    (``eps`` = float32 machine epsilon); ``avg_factor`` with ``'sum'`` is an error.
    """
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return reduce_loss(loss, reduction)
    if reduction == "mean":
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    if reduction != "none":
        raise ValueError('avg_factor can not be used with reduction="sum"')
    return loss


def weighted_loss(loss_func):
    """Turn an element-wise ``loss_func(pred, target, **kw)`` into
    ``fn(pred, target, weight=None, reduction='mean', avg_factor=None, **kw)`` via :func:`weight_reduce_loss`."""

    @functools.wraps(loss_func)
    def wrapper(pred, target, weight=None, reduction="mean", avg_factor=None, **kwargs):
        return weight_reduce_loss(loss_func(pred, target, **kwargs), weight, reduction, avg_factor)

    return wrapper
