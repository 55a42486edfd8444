"""``CrossEntropyLoss`` of mmdetection 2.28: softmax, sigmoid (binary) and per-class mask variants."""
from __future__ import annotations

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from mmdet.registry import LOSSES

from .utils import resolve_reduction, weight_reduce_loss

_DEFAULT_IGNORE = -100


def cross_entropy(pred: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None,
                  reduction: str = "mean", avg_factor: float | None = None,
                  class_weight: torch.Tensor | None = None, ignore_index: int | None = None,
                  avg_non_ignore: bool = False) -> torch.Tensor:
    """Softmax cross entropy.

    Args:
        pred: ``(N, C)`` logits.
        label: ``(N,)`` int64 class indices.
        weight: ``(N,)`` sample weights.
        class_weight: ``(C,)`` per-class weights.
        ignore_index: label to ignore (default -100).
        avg_non_ignore: with ``'mean'`` and no ``avg_factor``, average over the non-ignored labels only.
    """
    ignore_index = _DEFAULT_IGNORE if ignore_index is None else ignore_index
    loss = F.cross_entropy(pred, label, weight=class_weight, reduction="none", ignore_index=ignore_index)
    if avg_factor is None and avg_non_ignore and reduction == "mean":
        avg_factor = label.numel() - (label == ignore_index).sum().item()
    if weight is not None:
        weight = weight.float()
    return weight_reduce_loss(loss, weight=weight, reduction=reduction, avg_factor=avg_factor)


def _expand_onehot_labels(labels: torch.Tensor, label_weights: torch.Tensor | None, label_channels: int,
                          ignore_index: int):
    """``(N,)`` labels -> ``(N, C)`` one-hot targets (labels ``>= C`` are background: all zeros), weights, mask."""
    bin_labels = labels.new_zeros((labels.size(0), label_channels))
    valid_mask = (labels >= 0) & (labels != ignore_index)
    inds = torch.nonzero(valid_mask & (labels < label_channels), as_tuple=False)
    if inds.numel() > 0:
        bin_labels[inds, labels[inds]] = 1
    valid_mask = valid_mask.view(-1, 1).expand(labels.size(0), label_channels).float()
    if label_weights is None:
        bin_label_weights = valid_mask
    else:
        bin_label_weights = label_weights.view(-1, 1).repeat(1, label_channels) * valid_mask
    return bin_labels, bin_label_weights, valid_mask


def binary_cross_entropy(pred: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None,
                         reduction: str = "mean", avg_factor: float | None = None,
                         class_weight: torch.Tensor | None = None, ignore_index: int | None = None,
                         avg_non_ignore: bool = False) -> torch.Tensor:
    """Sigmoid BCE-with-logits.

    Args:
        pred: ``(N, C)`` (or any shape equal to ``label``'s) logits.
        label: ``(N,)`` class indices (``C`` or more = background, expanded to one-hot) or same shape as
            ``pred`` (binary targets).
        weight: element or sample weights.
        class_weight: used as ``pos_weight``.
    """
    ignore_index = _DEFAULT_IGNORE if ignore_index is None else ignore_index
    if pred.dim() != label.dim():
        label, weight, valid_mask = _expand_onehot_labels(label, weight, pred.size(-1), ignore_index)
    else:
        valid_mask = ((label >= 0) & (label != ignore_index)).float()
        weight = valid_mask if weight is None else weight * valid_mask
    if avg_factor is None and avg_non_ignore and reduction == "mean":
        avg_factor = valid_mask.sum().item()
    loss = F.binary_cross_entropy_with_logits(pred, label.float(), pos_weight=class_weight, reduction="none")
    return weight_reduce_loss(loss, weight.float(), reduction=reduction, avg_factor=avg_factor)


def mask_cross_entropy(pred: torch.Tensor, target: torch.Tensor, label: torch.Tensor, reduction: str = "mean",
                       avg_factor: float | None = None, class_weight: torch.Tensor | None = None,
                       ignore_index: int | None = None, **kwargs) -> torch.Tensor:
    """BCE on each roi's own class channel, mean over every pixel of every roi.

    Args:
        pred: ``(R, C, h, w)`` mask logits.
        target: ``(R, h, w)`` binary targets.
        label: ``(R,)`` class of each roi.

    Returns:
        ``(1,)`` loss (``reduction``/``avg_factor`` are not used, as in mmdetection).
    """
    if ignore_index is not None:
        raise ValueError("mask_cross_entropy does not support ignore_index; set ignore_index=None")
    slices = pred[torch.arange(pred.size(0), device=pred.device), label].squeeze(1)
    return F.binary_cross_entropy_with_logits(slices, target, weight=class_weight, reduction="mean")[None]


@LOSSES.register_module()
class CrossEntropyLoss(nn.Module):
    """Cross entropy (softmax, sigmoid, or per-class mask BCE).

    Args:
        use_sigmoid: sigmoid BCE (labels ``>= C`` are background) instead of softmax.
        use_mask: mask BCE on each roi's label channel (``forward(pred, target, label)``).
        reduction: ``'none'``, ``'mean'`` or ``'sum'``.
        class_weight: per-class weights (softmax) / ``pos_weight`` (sigmoid).
        ignore_index: label to ignore.
        loss_weight: multiplier.
        avg_non_ignore: average over non-ignored labels only.
    """

    def __init__(self, use_sigmoid: bool = False, use_mask: bool = False, reduction: str = "mean",
                 class_weight=None, ignore_index: int | None = None, loss_weight: float = 1.0,
                 avg_non_ignore: bool = False):
        super().__init__()
        if use_sigmoid and use_mask:
            raise ValueError("CrossEntropyLoss: use_sigmoid and use_mask cannot both be True")
        self.use_sigmoid = use_sigmoid
        self.use_mask = use_mask
        self.reduction = reduction
        self.loss_weight = loss_weight
        self.class_weight = class_weight
        self.ignore_index = ignore_index
        self.avg_non_ignore = avg_non_ignore
        if ignore_index is not None and not avg_non_ignore and reduction == "mean":
            warnings.warn("CrossEntropyLoss: with ignore_index set, consider avg_non_ignore=True to average over "
                          "non-ignored labels only", UserWarning)
        if use_sigmoid:
            self.cls_criterion = binary_cross_entropy
        elif use_mask:
            self.cls_criterion = mask_cross_entropy
        else:
            self.cls_criterion = cross_entropy

    def extra_repr(self) -> str:
        return f"avg_non_ignore={self.avg_non_ignore}"

    def forward(self, cls_score: torch.Tensor, label: torch.Tensor, weight: torch.Tensor | None = None,
                avg_factor: float | None = None, reduction_override: str | None = None,
                ignore_index: int | None = None, **kwargs) -> torch.Tensor:
        """Loss of ``cls_score`` against ``label`` (see the criterion functions for shapes)."""
        reduction = resolve_reduction(reduction_override, self.reduction)
        if ignore_index is None:
            ignore_index = self.ignore_index
        class_weight = (cls_score.new_tensor(self.class_weight, device=cls_score.device)
                        if self.class_weight is not None else None)
        return self.loss_weight * self.cls_criterion(
            cls_score, label, weight, class_weight=class_weight, reduction=reduction, avg_factor=avg_factor,
            ignore_index=ignore_index, avg_non_ignore=self.avg_non_ignore, **kwargs)
