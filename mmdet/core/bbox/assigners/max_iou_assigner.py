"""``MaxIoUAssigner`` (mmdetection 2.x): assign boxes to gts by IoU thresholds, fully vectorised."""
from __future__ import annotations

import torch

from mmdet.registry import BBOX_ASSIGNERS

from ..iou_calculators import build_iou_calculator
from .assign_result import AssignResult
from .base_assigner import BaseAssigner


@BBOX_ASSIGNERS.register_module()
class MaxIoUAssigner(BaseAssigner):
    """Assign each box to the gt it overlaps most, by thresholds.

    Per box: ``-1`` ignored, ``0`` negative (``0 <= max IoU < neg_iou_thr``, or inside a ``(lo, hi)``
    range), ``i`` (1-based gt index) if ``max IoU >= pos_iou_thr``. Then, with ``match_low_quality``, every gt
    whose best IoU is ``>= min_pos_iou`` also takes every box reaching that best IoU
    (``gt_max_assign_all``) or only its first arg-max box; later gts overwrite earlier ones.

    Args:
        pos_iou_thr: IoU threshold for positives.
        neg_iou_thr: float, or ``(lo, hi)`` tuple, for negatives.
        min_pos_iou: minimum best IoU for a gt to get a low-quality match.
        gt_max_assign_all: low-quality match to all boxes tied at the gt's best IoU.
        ignore_iof_thr: boxes whose IoF with an ignored gt box exceeds this are ignored (``< 0`` disables).
        ignore_wrt_candidates: IoF over the candidate's area (True) or the ignore box's area.
        match_low_quality: enable the low-quality pass.
        gpu_assign_thr: above this many gts (``> 0``) the assignment runs on CPU to save GPU memory.
        iou_calculator: config of the IoU calculator.
    """

    def __init__(self, pos_iou_thr: float, neg_iou_thr, min_pos_iou: float = 0.0, gt_max_assign_all: bool = True,
                 ignore_iof_thr: float = -1, ignore_wrt_candidates: bool = True, match_low_quality: bool = True,
                 gpu_assign_thr: int = -1, iou_calculator: dict = dict(type="BboxOverlaps2D")):
        if not isinstance(neg_iou_thr, (int, float)) and not (isinstance(neg_iou_thr, (tuple, list))
                                                               and len(neg_iou_thr) == 2):
            raise TypeError(f"MaxIoUAssigner neg_iou_thr must be a float or a (lo, hi) pair, got {neg_iou_thr!r}")
        self.pos_iou_thr = pos_iou_thr
        self.neg_iou_thr = neg_iou_thr
        self.min_pos_iou = min_pos_iou
        self.gt_max_assign_all = gt_max_assign_all
        self.ignore_iof_thr = ignore_iof_thr
        self.ignore_wrt_candidates = ignore_wrt_candidates
        self.gpu_assign_thr = gpu_assign_thr
        self.match_low_quality = match_low_quality
        self.iou_calculator = build_iou_calculator(iou_calculator)

    def assign(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor, gt_bboxes_ignore: torch.Tensor | None = None,
               gt_labels: torch.Tensor | None = None) -> AssignResult:
        """Assign ``bboxes`` ``(N, 4)`` to ``gt_bboxes`` ``(G, 4)`` (optional ``gt_labels`` ``(G,)``)."""
        on_cpu = self.gpu_assign_thr > 0 and gt_bboxes.shape[0] > self.gpu_assign_thr
        device = bboxes.device
        if on_cpu:
            bboxes, gt_bboxes = bboxes.cpu(), gt_bboxes.cpu()
            gt_bboxes_ignore = gt_bboxes_ignore.cpu() if gt_bboxes_ignore is not None else None
            gt_labels = gt_labels.cpu() if gt_labels is not None else None

        overlaps = self.iou_calculator(gt_bboxes, bboxes)
        if (self.ignore_iof_thr > 0 and gt_bboxes_ignore is not None and gt_bboxes_ignore.numel() > 0
                and bboxes.numel() > 0):
            if self.ignore_wrt_candidates:
                ignore_max = self.iou_calculator(bboxes, gt_bboxes_ignore, mode="iof").max(dim=1).values
            else:
                ignore_max = self.iou_calculator(gt_bboxes_ignore, bboxes, mode="iof").max(dim=0).values
            overlaps[:, ignore_max > self.ignore_iof_thr] = -1

        result = self.assign_wrt_overlaps(overlaps, gt_labels)
        if on_cpu:
            result.gt_inds = result.gt_inds.to(device)
            result.max_overlaps = result.max_overlaps.to(device)
            if result.labels is not None:
                result.labels = result.labels.to(device)
        return result

    def assign_wrt_overlaps(self, overlaps: torch.Tensor, gt_labels: torch.Tensor | None = None) -> AssignResult:
        """Assign from a precomputed ``(G, N)`` overlap matrix."""
        num_gts, num_bboxes = overlaps.size(0), overlaps.size(1)
        assigned_gt_inds = overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
        if num_gts == 0 or num_bboxes == 0:
            max_overlaps = overlaps.new_zeros((num_bboxes,))
            if num_gts == 0:
                assigned_gt_inds[:] = 0
            labels = None if gt_labels is None else overlaps.new_full((num_bboxes,), -1, dtype=torch.long)
            return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=labels)

        max_overlaps, argmax_overlaps = overlaps.max(dim=0)
        gt_max_overlaps, gt_argmax_overlaps = overlaps.max(dim=1)

        if isinstance(self.neg_iou_thr, (tuple, list)):
            neg = (max_overlaps >= self.neg_iou_thr[0]) & (max_overlaps < self.neg_iou_thr[1])
        else:
            neg = (max_overlaps >= 0) & (max_overlaps < self.neg_iou_thr)
        assigned_gt_inds[neg] = 0
        pos = max_overlaps >= self.pos_iou_thr
        assigned_gt_inds[pos] = argmax_overlaps[pos] + 1

        if self.match_low_quality:
            # (gt, box) low-quality pairs; each box keeps the LAST qualifying gt (later gts overwrite earlier ones)
            qualifies = gt_max_overlaps >= self.min_pos_iou
            if self.gt_max_assign_all:
                hits = (overlaps == gt_max_overlaps[:, None]) & qualifies[:, None]
                gt_idx, box_idx = hits.nonzero(as_tuple=True)
            else:
                gt_idx = qualifies.nonzero(as_tuple=False).squeeze(1)
                box_idx = gt_argmax_overlaps[gt_idx]
            last_gt = torch.zeros(num_bboxes, dtype=torch.long, device=overlaps.device)
            last_gt.scatter_reduce_(0, box_idx, gt_idx + 1, reduce="amax")
            matched = last_gt > 0
            assigned_gt_inds[matched] = last_gt[matched]

        labels = None
        if gt_labels is not None:
            labels = assigned_gt_inds.new_full((num_bboxes,), -1)
            pos_inds = assigned_gt_inds > 0
            labels[pos_inds] = gt_labels[assigned_gt_inds[pos_inds] - 1]
        return AssignResult(num_gts, assigned_gt_inds, max_overlaps, labels=labels)
