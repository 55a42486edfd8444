"""Sampler base class: optional gt-as-proposal, then positives, then negatives to fill ``num``."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch

from ..assigners.assign_result import AssignResult
from .sampling_result import SamplingResult


class BaseSampler(metaclass=ABCMeta):
    """Base of the samplers.

    Args:
        num: total number of samples per image.
        pos_fraction: at most ``int(num * pos_fraction)`` positives.
        neg_pos_ub: upper bound of negatives per positive (``< 0``: no bound).
        add_gt_as_proposals: prepend the gt boxes to the candidates (they are assigned to themselves).
    """

    def __init__(self, num: int, pos_fraction: float, neg_pos_ub: float = -1, add_gt_as_proposals: bool = True,
                 **kwargs):
        self.num = num
        self.pos_fraction = pos_fraction
        self.neg_pos_ub = neg_pos_ub
        self.add_gt_as_proposals = add_gt_as_proposals
        self.pos_sampler = self
        self.neg_sampler = self

    @abstractmethod
    def _sample_pos(self, assign_result: AssignResult, num_expected: int, **kwargs) -> torch.Tensor:
        """Indices of up to ``num_expected`` positives."""

    @abstractmethod
    def _sample_neg(self, assign_result: AssignResult, num_expected: int, **kwargs) -> torch.Tensor:
        """Indices of up to ``num_expected`` negatives."""

    def sample(self, assign_result: AssignResult, bboxes: torch.Tensor, gt_bboxes: torch.Tensor,
               gt_labels: torch.Tensor | None = None, **kwargs) -> SamplingResult:
        """Sample positives and negatives of one image.

        Args:
            assign_result: the assigner's result for ``bboxes``.
            bboxes: ``(N, 4)`` (or ``(N, 5)`` with a score column, dropped) candidates.
            gt_bboxes: ``(G, 4)``.
            gt_labels: ``(G,)``; needed when ``add_gt_as_proposals``.

        Returns:
            :class:`SamplingResult`; with gts added, candidate indices ``0..G-1`` are the gts.
        """
        if bboxes.dim() < 2:
            bboxes = bboxes[None, :]
        bboxes = bboxes[:, :4]
        gt_flags = bboxes.new_zeros((bboxes.shape[0],), dtype=torch.uint8)
        if self.add_gt_as_proposals and len(gt_bboxes) > 0:
            if gt_labels is None:
                raise ValueError("gt_labels must be given when add_gt_as_proposals is True")
            bboxes = torch.cat([gt_bboxes, bboxes], dim=0)
            assign_result.add_gt_(gt_labels)
            gt_flags = torch.cat([bboxes.new_ones(gt_bboxes.shape[0], dtype=torch.uint8), gt_flags])

        num_expected_pos = int(self.num * self.pos_fraction)
        pos_inds = self.pos_sampler._sample_pos(assign_result, num_expected_pos, bboxes=bboxes, **kwargs).unique()
        num_sampled_pos = pos_inds.numel()
        num_expected_neg = self.num - num_sampled_pos
        if self.neg_pos_ub >= 0:
            neg_upper_bound = int(self.neg_pos_ub * max(1, num_sampled_pos))
            num_expected_neg = min(num_expected_neg, neg_upper_bound)
        neg_inds = self.neg_sampler._sample_neg(assign_result, num_expected_neg, bboxes=bboxes, **kwargs).unique()
        return SamplingResult(pos_inds, neg_inds, bboxes, gt_bboxes, assign_result, gt_flags)
