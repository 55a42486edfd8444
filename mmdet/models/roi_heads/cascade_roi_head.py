"""``CascadeRoIHead``: multi-stage box refinement with per-stage assigners, coders and mask heads."""
from __future__ import annotations

import torch
from torch import nn

from mmdet.core.bbox import bbox2result, bbox2roi, build_assigner, build_sampler
from mmdet.core.post_processing import merge_aug_bboxes, multiclass_nms
from mmdet.models.builder import build_head, build_roi_extractor
from mmdet.registry import HEADS

from .base_roi_head import BaseRoIHead
from .standard_roi_head import assign_and_sample
from .test_mixins import (aug_bbox_results, aug_masks_of_detections, detections_per_image, empty_detections,
                          masks_of_detections, rois_in_view)

__all__ = ["CascadeRoIHead"]


def _replicate(cfg, num_stages: int, what: str) -> list:
    """A single config dict is used by every stage; a list must have one entry per stage."""
    cfgs = list(cfg) if isinstance(cfg, (list, tuple)) else [cfg] * num_stages
    if len(cfgs) != num_stages:
        raise ValueError(f"CascadeRoIHead: {what} has {len(cfgs)} entries but num_stages={num_stages}")
    return cfgs


@HEADS.register_module()
class CascadeRoIHead(BaseRoIHead):
    """Cascade R-CNN RoI head (mmdetection 2.x).

    Args:
        num_stages: number of box stages.
        stage_loss_weights: multiplies every ``loss*`` of stage ``i`` (logged as ``s{i}.loss_cls`` ...).
        bbox_roi_extractor / bbox_head / mask_roi_extractor / mask_head: a dict (replicated per stage) or a list.
        train_cfg: list of per-stage rcnn train configs (assigner, sampler, mask_size, pos_weight).
        test_cfg: rcnn test config (score_thr, nms, max_per_img, mask_thr_binary).

    Keys: ``bbox_head.{s}.*``, ``mask_head.{s}.*``.
    Test: logits of all stages are averaged before softmax; final boxes are the last stage's deltas on the
    last stage's input RoIs; masks are the mean of all stages' sigmoid masks on the final detections.
    """

    def __init__(self, num_stages: int, stage_loss_weights: list[float], bbox_roi_extractor=None, bbox_head=None,
                 mask_roi_extractor=None, mask_head=None, shared_head=None, train_cfg=None, test_cfg=None,
                 pretrained=None, init_cfg=None):
        if bbox_roi_extractor is None or bbox_head is None:
            raise ValueError("CascadeRoIHead needs bbox_roi_extractor and bbox_head")
        if shared_head is not None:
            raise ValueError("CascadeRoIHead does not support a shared_head; set shared_head=None")
        if len(stage_loss_weights) != num_stages:
            raise ValueError(f"CascadeRoIHead: stage_loss_weights has {len(stage_loss_weights)} entries but "
                             f"num_stages={num_stages}")
        self.num_stages = num_stages
        self.stage_loss_weights = list(stage_loss_weights)
        super().__init__(bbox_roi_extractor=bbox_roi_extractor, bbox_head=bbox_head,
                         mask_roi_extractor=mask_roi_extractor, mask_head=mask_head, shared_head=shared_head,
                         train_cfg=train_cfg, test_cfg=test_cfg, pretrained=pretrained, init_cfg=init_cfg)

    def init_bbox_head(self, bbox_roi_extractor, bbox_head) -> None:
        self.bbox_roi_extractor = nn.ModuleList(
            build_roi_extractor(c) for c in _replicate(bbox_roi_extractor, self.num_stages, "bbox_roi_extractor"))
        self.bbox_head = nn.ModuleList(build_head(c) for c in _replicate(bbox_head, self.num_stages, "bbox_head"))

    def init_mask_head(self, mask_roi_extractor, mask_head) -> None:
        self.mask_head = nn.ModuleList(build_head(c) for c in _replicate(mask_head, self.num_stages, "mask_head"))
        if mask_roi_extractor is not None:
            self.share_roi_extractor = False
            self.mask_roi_extractor = nn.ModuleList(
                build_roi_extractor(c) for c in _replicate(mask_roi_extractor, self.num_stages, "mask_roi_extractor"))
        else:
            self.share_roi_extractor = True
            self.mask_roi_extractor = self.bbox_roi_extractor

    def init_assigner_sampler(self) -> None:
        self.bbox_assigner, self.bbox_sampler = [], []
        if self.train_cfg is not None:
            for idx, stage_cfg in enumerate(_replicate(self.train_cfg, self.num_stages, "train_cfg")):
                self.current_stage = idx
                self.bbox_assigner.append(build_assigner(stage_cfg["assigner"]))
                self.bbox_sampler.append(build_sampler(stage_cfg["sampler"], context=self))

    # ------------------------------------------------------------------ forward pieces
    def _bbox_forward(self, stage: int, x, rois: torch.Tensor) -> dict:
        extractor = self.bbox_roi_extractor[stage]
        bbox_feats = extractor(x[:extractor.num_inputs], rois)
        cls_score, bbox_pred = self.bbox_head[stage](bbox_feats)
        return dict(cls_score=cls_score, bbox_pred=bbox_pred, bbox_feats=bbox_feats)

    def _mask_forward(self, stage: int, x, rois: torch.Tensor) -> dict:
        extractor = self.mask_roi_extractor[stage]
        mask_feats = extractor(x[:extractor.num_inputs], rois)
        return dict(mask_pred=self.mask_head[stage](mask_feats))

    def forward_dummy(self, x, proposals: torch.Tensor) -> tuple:
        outs = ()
        rois = bbox2roi([proposals])
        for i in range(self.num_stages):
            bbox_results = self._bbox_forward(i, x, rois)
            outs += (bbox_results["cls_score"], bbox_results["bbox_pred"])
            if self.with_mask:
                outs += (self._mask_forward(i, x, rois[:100])["mask_pred"],)
        return outs

    # ------------------------------------------------------------------ training
    def forward_train(self, x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore=None,
                      gt_masks=None) -> dict:
        """Per-stage losses ``s{i}.loss_cls`` / ``s{i}.acc`` / ``s{i}.loss_bbox`` / ``s{i}.loss_mask`` (losses
        weighted by ``stage_loss_weights[i]``). Stage ``i+1`` starts from stage ``i``'s sampled RoIs regressed by
        their labels (argmax for background ones), without the gt boxes."""
        losses = dict()
        for i in range(self.num_stages):
            self.current_stage = i
            stage_cfg = self.train_cfg[i]
            weight = self.stage_loss_weights[i]
            sampling_results = assign_and_sample(self.bbox_assigner[i], self.bbox_sampler[i], x, proposal_list,
                                                 gt_bboxes, gt_labels, gt_bboxes_ignore)
            rois = bbox2roi([res.bboxes for res in sampling_results])
            bbox_results = self._bbox_forward(i, x, rois)
            bbox_targets = self.bbox_head[i].get_targets(sampling_results, gt_bboxes, gt_labels, stage_cfg)
            stage_losses = self.bbox_head[i].loss(bbox_results["cls_score"], bbox_results["bbox_pred"], rois,
                                                  *bbox_targets)
            if self.with_mask:
                pos_rois = bbox2roi([res.pos_bboxes for res in sampling_results])
                mask_pred = self._mask_forward(i, x, pos_rois)["mask_pred"]
                mask_targets = self.mask_head[i].get_targets(sampling_results, gt_masks, stage_cfg)
                pos_labels = torch.cat([res.pos_gt_labels for res in sampling_results])
                stage_losses.update(self.mask_head[i].loss(mask_pred, mask_targets, pos_labels))
            for name, value in stage_losses.items():
                losses[f"s{i}.{name}"] = value * weight if "loss" in name else value

            if i < self.num_stages - 1:
                cls_score = bbox_results["cls_score"]
                if cls_score.numel() == 0:
                    break
                with torch.no_grad():
                    roi_labels = bbox_targets[0]
                    background = self.bbox_head[i].num_classes
                    roi_labels = torch.where(roi_labels == background, cls_score[:, :-1].argmax(1), roi_labels)
                    proposal_list = self.bbox_head[i].refine_bboxes(
                        rois, roi_labels, bbox_results["bbox_pred"], [res.pos_is_gt for res in sampling_results],
                        img_metas)
        return losses

    # ------------------------------------------------------------------ inference
    def _stage_scores_and_rois(self, x, rois: torch.Tensor, img_metas: list[dict], num_per_img: tuple[int, ...]):
        """Run all stages; returns the mean logits ``(R, C+1)``, the last stage's input RoIs ``(R, 5)`` and its
        deltas. Between stages each RoI is regressed by its argmax non-background class."""
        logits_sum = None
        bbox_pred = None
        for i in range(self.num_stages):
            bbox_results = self._bbox_forward(i, x, rois)
            cls_score, bbox_pred = bbox_results["cls_score"], bbox_results["bbox_pred"]
            logits_sum = cls_score if logits_sum is None else logits_sum + cls_score
            if i < self.num_stages - 1:
                labels = cls_score[:, :-1].argmax(dim=1)
                rois = torch.cat([
                    self.bbox_head[i].regress_by_class(r, l, p, meta) for r, l, p, meta in zip(
                        rois.split(num_per_img), labels.split(num_per_img), bbox_pred.split(num_per_img),
                        img_metas)])
        return logits_sum / float(self.num_stages), rois, bbox_pred

    def _stage_mean_mask_probs(self, x, mask_rois: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean over stages of each detection's label-channel sigmoid mask: ``(n, 1, 28, 28)``."""
        index = torch.arange(mask_rois.size(0), device=mask_rois.device)
        total = None
        for i in range(self.num_stages):
            mask_pred = self._mask_forward(i, x, mask_rois)["mask_pred"]
            if not self.mask_head[i].class_agnostic:
                mask_pred = mask_pred[index, labels]
            else:
                mask_pred = mask_pred[:, 0]
            probs = mask_pred.sigmoid()
            total = probs if total is None else total + probs
        return (total / float(self.num_stages))[:, None]

    def simple_test(self, x, proposal_list, img_metas, rescale: bool = False) -> list:
        """Per image ``bbox_results`` or ``(bbox_results, segm_results)`` (mmdetection 2.x cascade test)."""
        num_classes = self.bbox_head[-1].num_classes
        rois = bbox2roi(proposal_list)
        if rois.shape[0] == 0:
            dets = [empty_detections(rois.device) for _ in proposal_list]
            det_bboxes, det_labels = [d[0] for d in dets], [d[1] for d in dets]
        else:
            num_per_img = tuple(len(p) for p in proposal_list)
            cls_score, rois, bbox_pred = self._stage_scores_and_rois(x, rois, img_metas, num_per_img)
            det_bboxes, det_labels = detections_per_image(self.bbox_head[-1], rois, cls_score, bbox_pred, num_per_img,
                                                          img_metas, rescale, self.test_cfg)
        bbox_results = [bbox2result(b, l, num_classes) for b, l in zip(det_bboxes, det_labels)]
        if not self.with_mask:
            return bbox_results

        segms = masks_of_detections(
            det_bboxes, det_labels, img_metas, rescale, self.mask_head[-1].num_classes,
            lambda rois: self._stage_mean_mask_probs(x, rois, torch.cat(det_labels)),
            lambda probs, boxes, labels, ori_shape, factor: self.mask_head[-1].paste_probabilities(
                probs, boxes, labels, self.test_cfg, ori_shape, factor, rescale))
        return list(zip(bbox_results, segms))

    def aug_test(self, features, proposal_list, img_metas, rescale: bool = False) -> list:
        """TTA for one image: per view run the cascade on the mapped proposals, merge the views' boxes/scores,
        NMS, then average every (view, stage) sigmoid mask of the final detections."""
        aug_bboxes, aug_scores = [], []
        for x, img_meta in zip(features, img_metas):
            meta = img_meta[0]
            rois = rois_in_view(proposal_list[0], meta)
            if rois.shape[0] == 0:
                continue
            cls_score, rois, bbox_pred = self._stage_scores_and_rois(x, rois, [meta], (rois.shape[0],))
            bboxes, scores = self.bbox_head[-1].get_bboxes(rois, cls_score, bbox_pred, meta["img_shape"],
                                                           meta["scale_factor"], rescale=False, cfg=None)
            aug_bboxes.append(bboxes)
            aug_scores.append(scores)
        num_classes = self.bbox_head[-1].num_classes
        if not aug_bboxes:
            det_bboxes, det_labels = empty_detections(proposal_list[0].device)
        else:
            merged_bboxes, merged_scores = merge_aug_bboxes(aug_bboxes, aug_scores, img_metas, self.test_cfg)
            det_bboxes, det_labels = multiclass_nms(merged_bboxes, merged_scores, self.test_cfg["score_thr"],
                                                    self.test_cfg["nms"], self.test_cfg["max_per_img"])
        bbox_results = aug_bbox_results(det_bboxes, det_labels, img_metas, rescale, num_classes)
        if not self.with_mask:
            return [bbox_results]
        segm = aug_masks_of_detections(
            features, img_metas, det_bboxes, det_labels, self.mask_head[-1], self.test_cfg,
            lambda x, rois: [self._mask_forward(i, x, rois)["mask_pred"] for i in range(self.num_stages)])
        return [(bbox_results, segm)]
