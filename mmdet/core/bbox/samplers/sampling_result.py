"""``SamplingResult``: the positive and negative boxes chosen by a sampler."""
from __future__ import annotations

import torch

from ..assigners.assign_result import AssignResult


class SamplingResult:
    """Sampled positives and negatives of one image.

    Attributes:
        pos_inds, neg_inds: ``(P,)`` / ``(Q,)`` int64 indices into ``bboxes`` (sorted, unique).
        pos_bboxes, neg_bboxes: ``(P, 4)`` / ``(Q, 4)``.
        pos_is_gt: ``(P,)`` uint8, 1 where the positive is a gt box added as a proposal.
        num_gts: number of gts.
        pos_assigned_gt_inds: ``(P,)`` 0-based gt index of each positive.
        pos_gt_bboxes: ``(P, 4)`` the assigned gt boxes.
        pos_gt_labels: ``(P,)`` their labels, or None when the assigner had no labels.
    """

    def __init__(self, pos_inds: torch.Tensor, neg_inds: torch.Tensor, bboxes: torch.Tensor,
                 gt_bboxes: torch.Tensor, assign_result: AssignResult, gt_flags: torch.Tensor):
        self.pos_inds = pos_inds
        self.neg_inds = neg_inds
        self.pos_bboxes = bboxes[pos_inds]
        self.neg_bboxes = bboxes[neg_inds]
        self.pos_is_gt = gt_flags[pos_inds]
        self.num_gts = gt_bboxes.shape[0]
        self.pos_assigned_gt_inds = assign_result.gt_inds[pos_inds] - 1
        if gt_bboxes.numel() == 0:
            if self.pos_assigned_gt_inds.numel() != 0:
                raise ValueError("SamplingResult: positives were assigned although there are no gt boxes")
            self.pos_gt_bboxes = torch.empty_like(gt_bboxes).view(-1, 4)
        else:
            self.pos_gt_bboxes = gt_bboxes.view(-1, 4)[self.pos_assigned_gt_inds.long(), :]
        self.pos_gt_labels = assign_result.labels[pos_inds] if assign_result.labels is not None else None

    @property
    def bboxes(self) -> torch.Tensor:
        """``(P + Q, 4)`` positives then negatives."""
        return torch.cat([self.pos_bboxes, self.neg_bboxes])

    def to(self, device) -> "SamplingResult":
        """Move every tensor attribute to ``device`` (in place); returns self."""
        for key, value in self.__dict__.items():
            if isinstance(value, torch.Tensor):
                self.__dict__[key] = value.to(device)
        return self

    @property
    def info(self) -> dict:
        return {"pos_inds": self.pos_inds, "neg_inds": self.neg_inds, "pos_bboxes": self.pos_bboxes,
                "neg_bboxes": self.neg_bboxes, "pos_is_gt": self.pos_is_gt, "num_gts": self.num_gts,
                "pos_assigned_gt_inds": self.pos_assigned_gt_inds}

    def __repr__(self) -> str:
        return (f"<SamplingResult(num_pos={self.pos_inds.numel()}, num_neg={self.neg_inds.numel()}, "
                f"num_gts={self.num_gts})>")
