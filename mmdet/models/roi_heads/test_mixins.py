"""Box and mask test paths shared by the RoI heads (mmdetection 2.x ``BBoxTestMixin`` / ``MaskTestMixin``)."""
from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from mmdet.core.bbox import bbox2result, bbox2roi, bbox_mapping
from mmdet.core.post_processing import merge_aug_bboxes, merge_aug_masks, multiclass_nms

__all__ = ["BBoxTestMixin", "MaskTestMixin", "empty_detections", "scale_factor_tensor", "rois_in_view",
           "detections_per_image", "aug_bbox_results", "masks_of_detections", "aug_masks_of_detections"]


def empty_detections(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """``(det_bboxes (0, 5), det_labels (0,))`` on ``device``."""
    return torch.zeros(0, 5, device=device), torch.zeros(0, dtype=torch.long, device=device)


def scale_factor_tensor(scale_factor, like: torch.Tensor) -> torch.Tensor:
    """``img_meta['scale_factor']`` (float32 array ``[w, h, w, h]``, tensor or float) as a float32 tensor."""
    if isinstance(scale_factor, torch.Tensor):
        return scale_factor.to(device=like.device, dtype=torch.float32)
    return torch.as_tensor(np.asarray(scale_factor, dtype=np.float32), device=like.device)


def rois_in_view(boxes: torch.Tensor, meta: dict) -> torch.Tensor:
    """``(K, 4+)`` original-image boxes -> ``(K, 5)`` RoIs (batch index 0) in the TTA view ``meta`` describes
    (its ``scale_factor``, ``flip`` and ``flip_direction``), clipped to its ``img_shape``."""
    return bbox2roi([bbox_mapping(boxes[:, :4], meta["img_shape"], meta["scale_factor"], meta["flip"],
                                  meta.get("flip_direction", "horizontal"))])


def detections_per_image(bbox_head, rois: torch.Tensor, cls_score: torch.Tensor, bbox_pred: torch.Tensor,
                         num_per_img: tuple[int, ...], img_metas: list[dict], rescale: bool, rcnn_test_cfg
                         ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Split a batch's head outputs per image and run ``bbox_head.get_bboxes`` (decode + NMS) on each:
    per image ``det_bboxes (n, 5)`` and ``det_labels (n,)`` (empty for an image without RoIs)."""
    det_bboxes, det_labels = [], []
    for r, s, p, meta in zip(rois.split(num_per_img, 0), cls_score.split(num_per_img, 0),
                             bbox_pred.split(num_per_img, 0), img_metas):
        if r.shape[0] == 0:
            det_bbox, det_label = empty_detections(rois.device)
        else:
            det_bbox, det_label = bbox_head.get_bboxes(r, s, p, meta["img_shape"], meta["scale_factor"],
                                                       rescale=rescale, cfg=rcnn_test_cfg)
        det_bboxes.append(det_bbox)
        det_labels.append(det_label)
    return det_bboxes, det_labels


def aug_bbox_results(det_bboxes: torch.Tensor, det_labels: torch.Tensor, img_metas: list[list[dict]],
                     rescale: bool, num_classes: int) -> list:
    """``bbox2result`` of TTA detections merged in original-image coordinates (scaled into view 0 when
    ``rescale=False``)."""
    if not rescale:
        det_bboxes = det_bboxes.clone()
        det_bboxes[:, :4] *= scale_factor_tensor(img_metas[0][0]["scale_factor"], det_bboxes)
    return bbox2result(det_bboxes, det_labels, num_classes)


def masks_of_detections(det_bboxes: list[torch.Tensor], det_labels: list[torch.Tensor], img_metas: list[dict],
                        rescale: bool, num_classes: int, predict: Callable[[torch.Tensor], torch.Tensor],
                        paste: Callable[..., list]) -> list[list[list[np.ndarray]]]:
    """Per image, per class lists of binary masks of the detections (empty lists for an image without any).

    Mask RoIs are the detections in resized-image coordinates (``det_bboxes * scale_factor`` when ``rescale``);
    ``predict(rois (K, 5))`` runs once for all images and returns one mask output per RoI ``(K, ...)``;
    ``paste(pred_i, boxes_i, labels_i, ori_shape, scale_factor_i)`` turns one image's outputs into its masks.
    """
    if all(d.shape[0] == 0 for d in det_bboxes):
        return [[[] for _ in range(num_classes)] for _ in det_bboxes]
    if rescale:
        factors = [scale_factor_tensor(m["scale_factor"], d) for m, d in zip(img_metas, det_bboxes)]
        boxes = [d[:, :4] * f for d, f in zip(det_bboxes, factors)]
    else:
        factors = [m["scale_factor"] for m in img_metas]
        boxes = [d[:, :4] for d in det_bboxes]
    preds = predict(bbox2roi(boxes)).split([len(d) for d in det_bboxes], 0)
    results = []
    for i, meta in enumerate(img_metas):
        if det_bboxes[i].shape[0] == 0:
            results.append([[] for _ in range(num_classes)])
        else:
            results.append(paste(preds[i], boxes[i], det_labels[i], meta["ori_shape"], factors[i]))
    return results


def aug_masks_of_detections(feats: list, img_metas: list[list[dict]], det_bboxes: torch.Tensor,
                            det_labels: torch.Tensor, mask_head, test_cfg,
                            view_mask_logits: Callable[[object, torch.Tensor], list[torch.Tensor]]) -> list:
    """TTA masks of one image: the (original-image) detections are mapped into every view, every sigmoid mask
    ``view_mask_logits(view features, rois)`` gives there (one per stage for a cascade) is unflipped and averaged
    (``merge_aug_masks``), and ``mask_head.get_seg_masks`` pastes the mean into ``ori_shape``."""
    if det_bboxes.shape[0] == 0:
        return [[] for _ in range(mask_head.num_classes)]
    aug_masks, aug_metas = [], []
    for x, img_meta in zip(feats, img_metas):
        for logits in view_mask_logits(x, rois_in_view(det_bboxes, img_meta[0])):
            aug_masks.append(logits.sigmoid().cpu().numpy())
            aug_metas.append(img_meta)
    merged = merge_aug_masks(aug_masks, aug_metas, test_cfg)
    return mask_head.get_seg_masks(merged, det_bboxes, det_labels, test_cfg, img_metas[0][0]["ori_shape"],
                                   scale_factor=det_bboxes.new_ones(4), rescale=False)


class BBoxTestMixin:
    """Box inference for heads with ``self.bbox_head`` and ``self._bbox_forward(x, rois)``."""

    def simple_test_bboxes(self, x, img_metas: list[dict], proposals: list[torch.Tensor], rcnn_test_cfg,
                           rescale: bool = False) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per image ``det_bboxes (n, 5)`` and ``det_labels (n,)`` (original-image coordinates if ``rescale``).

        All images' RoIs go through the head in one batch; decoding and NMS are per image.
        """
        rois = bbox2roi(proposals)
        if rois.shape[0] == 0:
            dets = [empty_detections(rois.device) for _ in proposals]
            return [d[0] for d in dets], [d[1] for d in dets]
        bbox_results = self._bbox_forward(x, rois)
        return detections_per_image(self.bbox_head, rois, bbox_results["cls_score"], bbox_results["bbox_pred"],
                                    tuple(len(p) for p in proposals), img_metas, rescale, rcnn_test_cfg)

    def aug_test_bboxes(self, feats: list, img_metas: list[list[dict]], proposal_list: list[torch.Tensor],
                        rcnn_test_cfg) -> tuple[torch.Tensor, torch.Tensor]:
        """TTA for one image: map the (original-image) proposals into each augmented view, decode there, merge
        the views' boxes back (``merge_aug_bboxes``: unflip, unscale, average) and run ``multiclass_nms``."""
        aug_bboxes, aug_scores = [], []
        for x, img_meta in zip(feats, img_metas):
            meta = img_meta[0]
            rois = rois_in_view(proposal_list[0], meta)
            bbox_results = self._bbox_forward(x, rois)
            bboxes, scores = self.bbox_head.get_bboxes(rois, bbox_results["cls_score"], bbox_results["bbox_pred"],
                                                       meta["img_shape"], meta["scale_factor"], rescale=False,
                                                       cfg=None)
            aug_bboxes.append(bboxes)
            aug_scores.append(scores)
        merged_bboxes, merged_scores = merge_aug_bboxes(aug_bboxes, aug_scores, img_metas, rcnn_test_cfg)
        if merged_bboxes.shape[0] == 0:
            return empty_detections(merged_bboxes.device)
        return multiclass_nms(merged_bboxes, merged_scores, rcnn_test_cfg["score_thr"], rcnn_test_cfg["nms"],
                              rcnn_test_cfg["max_per_img"])


class MaskTestMixin:
    """Mask inference for heads with ``self.mask_head`` and ``self._mask_forward(x, rois)``."""

    def simple_test_mask(self, x, img_metas: list[dict], det_bboxes: list[torch.Tensor],
                         det_labels: list[torch.Tensor], rescale: bool = False) -> list[list[list[np.ndarray]]]:
        """Per image, per class lists of binary masks. Mask RoIs are the detections in resized-image coordinates
        (``det_bboxes * scale_factor`` when ``rescale``); one mask-head batch for all images."""
        return masks_of_detections(
            det_bboxes, det_labels, img_metas, rescale, self.mask_head.num_classes,
            lambda rois: self._mask_forward(x, rois)["mask_pred"],
            lambda pred, boxes, labels, ori_shape, factor: self.mask_head.get_seg_masks(
                pred, boxes, labels, self.test_cfg, ori_shape, factor, rescale))

    def aug_test_mask(self, feats: list, img_metas: list[list[dict]], det_bboxes: torch.Tensor,
                      det_labels: torch.Tensor) -> list[list[np.ndarray]]:
        """TTA masks of one image: the (original-image) detections are mapped into every view, their sigmoid
        masks are unflipped and averaged (``merge_aug_masks``) and pasted into ``ori_shape``."""
        return aug_masks_of_detections(feats, img_metas, det_bboxes, det_labels, self.mask_head, self.test_cfg,
                                       lambda x, rois: [self._mask_forward(x, rois)["mask_pred"]])
