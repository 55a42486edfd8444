"""``StandardRoIHead``: one box head and an optional mask head (Faster / Mask R-CNN)."""
from __future__ import annotations

import torch

from mmdet.core.bbox import bbox2result, bbox2roi, build_assigner, build_sampler
from mmdet.models.builder import build_head, build_roi_extractor
from mmdet.registry import HEADS

from .base_roi_head import BaseRoIHead
from .test_mixins import BBoxTestMixin, MaskTestMixin, aug_bbox_results

__all__ = ["StandardRoIHead", "assign_and_sample"]


def assign_and_sample(assigner, sampler, x, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore):
    """Assign and sample every image's proposals (gts added as proposals by the sampler when configured)."""
    if gt_bboxes_ignore is None:
        gt_bboxes_ignore = [None] * len(proposal_list)
    results = []
    for i in range(len(proposal_list)):
        assign_result = assigner.assign(proposal_list[i], gt_bboxes[i], gt_bboxes_ignore[i], gt_labels[i])
        results.append(sampler.sample(assign_result, proposal_list[i], gt_bboxes[i], gt_labels[i],
                                      feats=[level[i][None] for level in x]))
    return results


@HEADS.register_module()
class StandardRoIHead(BBoxTestMixin, MaskTestMixin, BaseRoIHead):
    """Box branch: ``bbox_roi_extractor`` (7x7) -> ``bbox_head``. Mask branch: ``mask_roi_extractor`` (14x14;
    ``None`` shares the box extractor and its features) -> ``mask_head``. Key names ``bbox_head.*``,
    ``mask_head.*`` (extractors hold no parameters)."""

    def init_assigner_sampler(self) -> None:
        self.bbox_assigner = self.bbox_sampler = None
        if self.train_cfg:
            self.bbox_assigner = build_assigner(self.train_cfg["assigner"])
            self.bbox_sampler = build_sampler(self.train_cfg["sampler"], context=self)

    def init_bbox_head(self, bbox_roi_extractor, bbox_head) -> None:
        self.bbox_roi_extractor = build_roi_extractor(bbox_roi_extractor)
        self.bbox_head = build_head(bbox_head)

    def init_mask_head(self, mask_roi_extractor, mask_head) -> None:
        if mask_roi_extractor is not None:
            self.mask_roi_extractor = build_roi_extractor(mask_roi_extractor)
            self.share_roi_extractor = False
        else:
            self.share_roi_extractor = True
            self.mask_roi_extractor = self.bbox_roi_extractor
        self.mask_head = build_head(mask_head)

    def forward_dummy(self, x, proposals: torch.Tensor) -> tuple:
        """FLOPs-counting forward over ``proposals (R, 4)`` of image 0."""
        outs = ()
        rois = bbox2roi([proposals])
        if self.with_bbox:
            bbox_results = self._bbox_forward(x, rois)
            outs += (bbox_results["cls_score"], bbox_results["bbox_pred"])
        if self.with_mask:
            outs += (self._mask_forward(x, rois[:100])["mask_pred"],)
        return outs

    def forward_train(self, x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore=None,
                      gt_masks=None, **kwargs) -> dict:
        """Losses ``loss_cls``, ``acc``, ``loss_bbox`` and ``loss_mask``.

        Args:
            x: FPN levels ``(N, C, H_l, W_l)``; proposal_list: per image ``(n, 4|5)`` proposals;
            gt_bboxes / gt_labels: per image ``(g, 4)`` / ``(g,)``; gt_masks: per image mask structures.
        """
        losses = dict()
        sampling_results = assign_and_sample(self.bbox_assigner, self.bbox_sampler, x, proposal_list, gt_bboxes,
                                             gt_labels, gt_bboxes_ignore)
        bbox_results = None
        if self.with_bbox:
            bbox_results = self._bbox_forward_train(x, sampling_results, gt_bboxes, gt_labels, img_metas)
            losses.update(bbox_results["loss_bbox"])
        if self.with_mask:
            bbox_feats = bbox_results["bbox_feats"] if bbox_results is not None else None
            mask_results = self._mask_forward_train(x, sampling_results, bbox_feats, gt_masks, img_metas)
            losses.update(mask_results["loss_mask"])
        return losses

    def _bbox_forward(self, x, rois: torch.Tensor) -> dict:
        bbox_feats = self.bbox_roi_extractor(x[:self.bbox_roi_extractor.num_inputs], rois)
        if self.with_shared_head:
            bbox_feats = self.shared_head(bbox_feats)
        cls_score, bbox_pred = self.bbox_head(bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _bbox_forward_train(self, x, sampling_results, gt_bboxes, gt_labels, img_metas) -> dict:
        rois = bbox2roi([res.bboxes for res in sampling_results])
        bbox_results = self._bbox_forward(x, rois)
        bbox_targets = self.bbox_head.get_targets(sampling_results, gt_bboxes, gt_labels, self.train_cfg)
        loss_bbox = self.bbox_head.loss(bbox_results["cls_score"], bbox_results["bbox_pred"], rois, *bbox_targets)
        bbox_results.update(loss_bbox=loss_bbox)
        return bbox_results

    def _mask_forward(self, x, rois: torch.Tensor | None = None, pos_inds: torch.Tensor | None = None,
                      bbox_feats: torch.Tensor | None = None) -> dict:
        if rois is not None:
            mask_feats = self.mask_roi_extractor(x[:self.mask_roi_extractor.num_inputs], rois)
            if self.with_shared_head:
                mask_feats = self.shared_head(mask_feats)
        else:
            if pos_inds is None or bbox_feats is None:
                raise ValueError("_mask_forward needs rois, or pos_inds together with bbox_feats")
            mask_feats = bbox_feats[pos_inds]
        return dict(mask_pred=self.mask_head(mask_feats), mask_feats=mask_feats)

    def _mask_forward_train(self, x, sampling_results, bbox_feats, gt_masks, img_metas) -> dict:
        if not self.share_roi_extractor:
            mask_results = self._mask_forward(x, bbox2roi([res.pos_bboxes for res in sampling_results]))
        else:
            pos_flags = []
            for res in sampling_results:
                pos_flags.append(torch.ones(res.pos_bboxes.shape[0], dtype=torch.bool, device=bbox_feats.device))
                pos_flags.append(torch.zeros(res.neg_bboxes.shape[0], dtype=torch.bool, device=bbox_feats.device))
            mask_results = self._mask_forward(x, pos_inds=torch.cat(pos_flags), bbox_feats=bbox_feats)
        mask_targets = self.mask_head.get_targets(sampling_results, gt_masks, self.train_cfg)
        pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
        loss_mask = self.mask_head.loss(mask_results["mask_pred"], mask_targets, pos_labels)
        mask_results.update(loss_mask=loss_mask, mask_targets=mask_targets)
        return mask_results

    def simple_test(self, x, proposal_list, img_metas, proposals=None, rescale: bool = False) -> list:
        """Per image ``bbox_results`` (80 arrays ``(n_c, 5)``) or ``(bbox_results, segm_results)``."""
        if not self.with_bbox:
            raise RuntimeError("StandardRoIHead.simple_test needs a bbox_head")
        det_bboxes, det_labels = self.simple_test_bboxes(x, img_metas, proposal_list, self.test_cfg,
                                                         rescale=rescale)
        bbox_results = [bbox2result(b, l, self.bbox_head.num_classes) for b, l in zip(det_bboxes, det_labels)]
        if not self.with_mask:
            return bbox_results
        segm_results = self.simple_test_mask(x, img_metas, det_bboxes, det_labels, rescale=rescale)
        return list(zip(bbox_results, segm_results))

    def aug_test(self, x, proposal_list, img_metas, rescale: bool = False) -> list:
        """TTA for one image (``x``: per-view features, ``img_metas``: per-view ``[meta]``); boxes are merged in
        original-image coordinates (scaled into view 0 when ``rescale=False``)."""
        det_bboxes, det_labels = self.aug_test_bboxes(x, img_metas, proposal_list, self.test_cfg)
        bbox_results = aug_bbox_results(det_bboxes, det_labels, img_metas, rescale, self.bbox_head.num_classes)
        if not self.with_mask:
            return [bbox_results]
        return [(bbox_results, self.aug_test_mask(x, img_metas, det_bboxes, det_labels))]
