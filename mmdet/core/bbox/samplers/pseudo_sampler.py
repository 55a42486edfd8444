"""``PseudoSampler``: takes every positive and every negative (heads that do not sample)."""
from __future__ import annotations

import torch

from mmdet.registry import BBOX_SAMPLERS

from ..assigners.assign_result import AssignResult
from .base_sampler import BaseSampler
from .sampling_result import SamplingResult


@BBOX_SAMPLERS.register_module()
class PseudoSampler(BaseSampler):
    """All assigned positives and negatives, no gt added."""

    def __init__(self, **kwargs):
        pass

    def _sample_pos(self, assign_result, num_expected, **kwargs):
        raise NotImplementedError("PseudoSampler takes every positive; call sample()")

    def _sample_neg(self, assign_result, num_expected, **kwargs):
        raise NotImplementedError("PseudoSampler takes every negative; call sample()")

    def sample(self, assign_result: AssignResult, bboxes: torch.Tensor, gt_bboxes: torch.Tensor, *args,
               **kwargs) -> SamplingResult:
        pos_inds = torch.nonzero(assign_result.gt_inds > 0, as_tuple=False).squeeze(-1).unique()
        neg_inds = torch.nonzero(assign_result.gt_inds == 0, as_tuple=False).squeeze(-1).unique()
        gt_flags = bboxes.new_zeros(bboxes.shape[0], dtype=torch.uint8)
        return SamplingResult(pos_inds, neg_inds, bboxes, gt_bboxes, assign_result, gt_flags)
