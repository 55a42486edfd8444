"""``accuracy`` / ``Accuracy`` of mmdetection 2.x (top-k, in percent)."""
from __future__ import annotations

import torch
from torch import nn


def accuracy(pred: torch.Tensor, target: torch.Tensor, topk=1, thresh: float | None = None):
    """Top-k accuracy in percent.

    Args:
        pred: ``(N, C)`` scores.
        target: ``(N,)`` labels.
        topk: an int (returns one ``(1,)`` tensor) or a tuple of ints (returns a list).
        thresh: a prediction also needs a score ``> thresh`` to count as correct.
    """
    if not isinstance(topk, (int, tuple)):
        raise TypeError(f"accuracy topk must be an int or a tuple of ints, got {topk!r}")
    return_single = isinstance(topk, int)
    topk = (topk,) if return_single else topk
    maxk = max(topk)
    if pred.size(0) == 0:
        accu = [pred.new_tensor(0.0) for _ in topk]
        return accu[0] if return_single else accu
    if pred.ndim != 2 or target.ndim != 1 or pred.size(0) != target.size(0):
        raise ValueError(f"accuracy needs pred (N, C) and target (N,), got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if maxk > pred.size(1):
        raise ValueError(f"accuracy: top-{maxk} requested but pred has only {pred.size(1)} classes")
    pred_value, pred_label = pred.topk(maxk, dim=1)
    pred_label = pred_label.t()
    correct = pred_label.eq(target.view(1, -1).expand_as(pred_label))
    if thresh is not None:
        correct = correct & (pred_value > thresh).t()
    res = [correct[:k].reshape(-1).float().sum(0, keepdim=True).mul_(100.0 / pred.size(0)) for k in topk]
    return res[0] if return_single else res


class Accuracy(nn.Module):
    """Module form of :func:`accuracy`."""

    def __init__(self, topk=(1,), thresh: float | None = None):
        super().__init__()
        self.topk = topk
        self.thresh = thresh

    def forward(self, pred: torch.Tensor, target: torch.Tensor):
        return accuracy(pred, target, self.topk, self.thresh)
