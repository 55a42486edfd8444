"""``RandomSampler`` (mmdetection 2.x)."""
from __future__ import annotations

import torch

from mmdet.registry import BBOX_SAMPLERS

from ..assigners.assign_result import AssignResult
from .base_sampler import BaseSampler


@BBOX_SAMPLERS.register_module()
class RandomSampler(BaseSampler):
    """Uniformly random positives (up to ``int(num * pos_fraction)``), then negatives to fill ``num``.

    It only draws (``torch.randperm``) when there are more candidates than requested; otherwise every
    candidate is taken, so with a large ``num`` the sampling is deterministic.
    """

    def __init__(self, num: int, pos_fraction: float, neg_pos_ub: float = -1, add_gt_as_proposals: bool = True,
                 **kwargs):
        super().__init__(num, pos_fraction, neg_pos_ub, add_gt_as_proposals)

    @staticmethod
    def random_choice(gallery: torch.Tensor, num: int) -> torch.Tensor:
        """``num`` distinct random entries of the 1-D ``gallery`` (the permutation is drawn on CPU)."""
        if len(gallery) < num:
            raise ValueError(f"RandomSampler.random_choice: cannot draw {num} from {len(gallery)} candidates")
        if not isinstance(gallery, torch.Tensor):
            gallery = torch.as_tensor(gallery, dtype=torch.long)
        perm = torch.randperm(gallery.numel())[:num].to(device=gallery.device)
        return gallery[perm]

    def _sample_from(self, candidates: torch.Tensor, num_expected: int) -> torch.Tensor:
        inds = torch.nonzero(candidates, as_tuple=False).squeeze(1)
        return inds if inds.numel() <= num_expected else self.random_choice(inds, num_expected)

    def _sample_pos(self, assign_result: AssignResult, num_expected: int, **kwargs) -> torch.Tensor:
        return self._sample_from(assign_result.gt_inds > 0, num_expected)

    def _sample_neg(self, assign_result: AssignResult, num_expected: int, **kwargs) -> torch.Tensor:
        return self._sample_from(assign_result.gt_inds == 0, num_expected)
