"""``BBoxHead``: classification + box-regression predictors of the RCNN stage (mmdetection 2.x semantics)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

from mmdet.core.bbox import build_bbox_coder
from mmdet.core.post_processing import multiclass_nms
from mmdet.models.builder import build_loss
from mmdet.models.layers.conv_module import build_conv_layer, normal_init
from mmdet.models.losses import accuracy
from mmdet.registry import HEADS

__all__ = ["BBoxHead"]


@HEADS.register_module()
class BBoxHead(nn.Module):
    """Simplest RCNN head: optional avg-pool, then ``fc_cls`` (``num_classes + 1`` logits, background LAST) and
    ``fc_reg`` (``4`` class-agnostic or ``4 * num_classes`` deltas; class ``c`` uses columns ``4c..4c+3``).

    Args follow mmdetection 2.28: ``with_avg_pool, with_cls, with_reg, roi_feat_size, in_channels, num_classes,
    bbox_coder, reg_class_agnostic, reg_decoded_bbox, reg_predictor_cfg, cls_predictor_cfg, loss_cls, loss_bbox,
    init_cfg``.
    """

    def __init__(self, with_avg_pool: bool = False, with_cls: bool = True, with_reg: bool = True,
                 roi_feat_size=7, in_channels: int = 256, num_classes: int = 80,
                 bbox_coder: dict = dict(type="DeltaXYWHBBoxCoder", clip_border=True, target_means=[0.0, 0.0, 0.0, 0.0],
                                         target_stds=[0.1, 0.1, 0.2, 0.2]),
                 reg_class_agnostic: bool = False, reg_decoded_bbox: bool = False,
                 reg_predictor_cfg: dict = dict(type="Linear"), cls_predictor_cfg: dict = dict(type="Linear"),
                 loss_cls: dict = dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0),
                 loss_bbox: dict = dict(type="SmoothL1Loss", beta=1.0, loss_weight=1.0),
                 init_cfg: dict | None = None):
        super().__init__()
        if not (with_cls or with_reg):
            raise ValueError("BBoxHead needs with_cls or with_reg")
        self.with_avg_pool, self.with_cls, self.with_reg = with_avg_pool, with_cls, with_reg
        self.roi_feat_size = _pair(roi_feat_size)
        self.roi_feat_area = self.roi_feat_size[0] * self.roi_feat_size[1]
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.reg_class_agnostic = reg_class_agnostic
        self.reg_decoded_bbox = reg_decoded_bbox
        self.reg_predictor_cfg, self.cls_predictor_cfg = reg_predictor_cfg, cls_predictor_cfg
        self.init_cfg = init_cfg
        self.bbox_coder = build_bbox_coder(bbox_coder)
        self.loss_cls = build_loss(loss_cls)
        self.loss_bbox = build_loss(loss_bbox)
        in_dim = in_channels if with_avg_pool else in_channels * self.roi_feat_area
        if with_avg_pool:
            self.avg_pool = nn.AvgPool2d(self.roi_feat_size)
        if with_cls:
            self.fc_cls = self._build_predictor(cls_predictor_cfg, in_dim, self.num_cls_logits)
        if with_reg:
            self.fc_reg = self._build_predictor(reg_predictor_cfg, in_dim, self.num_reg_outputs)
        self.debug_imgs = None

    @property
    def num_cls_logits(self) -> int:
        return self.num_classes + 1

    @property
    def num_reg_outputs(self) -> int:
        return 4 if self.reg_class_agnostic else 4 * self.num_classes

    @property
    def custom_activation(self) -> bool:
        return getattr(self.loss_cls, "custom_activation", False)

    @staticmethod
    def _build_predictor(cfg: dict, in_features: int, out_features: int) -> nn.Module:
        if cfg.get("type") == "Linear":
            extra = {k: v for k, v in cfg.items() if k != "type"}
            return nn.Linear(in_features, out_features, **extra)
        return build_conv_layer(cfg, in_features, out_features)

    def init_weights(self) -> None:
        """mmdet default: ``fc_cls`` ~ N(0, 0.01), ``fc_reg`` ~ N(0, 0.001), zero biases."""
        if self.with_cls:
            normal_init(self.fc_cls, std=0.01)
        if self.with_reg:
            normal_init(self.fc_reg, std=0.001)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """``(R, C, k, k)`` RoI features -> ``cls_score (R, num_classes+1)``, ``bbox_pred (R, 4|4*num_classes)``."""
        x = self.avg_pool(x) if self.with_avg_pool else x
        x = x.flatten(1)
        cls_score = self.fc_cls(x) if self.with_cls else None
        bbox_pred = self.fc_reg(x) if self.with_reg else None
        return cls_score, bbox_pred

    # ------------------------------------------------------------------ training targets and loss
    def _get_target_single(self, pos_bboxes: torch.Tensor, neg_bboxes: torch.Tensor, pos_gt_bboxes: torch.Tensor,
                           pos_gt_labels: torch.Tensor, cfg) -> tuple[torch.Tensor, ...]:
        """Targets of one image's sampled RoIs, positives first: labels (background = ``num_classes``), label
        weights, box targets (encoded deltas, or gt boxes with ``reg_decoded_bbox``) and box weights."""
        num_pos, num_neg = pos_bboxes.size(0), neg_bboxes.size(0)
        num_samples = num_pos + num_neg
        labels = pos_bboxes.new_full((num_samples,), self.num_classes, dtype=torch.long)
        label_weights = pos_bboxes.new_zeros(num_samples)
        bbox_targets = pos_bboxes.new_zeros(num_samples, 4)
        bbox_weights = pos_bboxes.new_zeros(num_samples, 4)
        if num_pos > 0:
            labels[:num_pos] = pos_gt_labels
            pos_weight = cfg["pos_weight"] if cfg.get("pos_weight", -1) > 0 else 1.0
            label_weights[:num_pos] = pos_weight
            bbox_targets[:num_pos] = (pos_gt_bboxes if self.reg_decoded_bbox
                                      else self.bbox_coder.encode(pos_bboxes, pos_gt_bboxes))
            bbox_weights[:num_pos] = 1
        if num_neg > 0:
            label_weights[num_pos:] = 1.0
        return labels, label_weights, bbox_targets, bbox_weights

    def get_targets(self, sampling_results: list, gt_bboxes: list, gt_labels: list, rcnn_train_cfg,
                    concat: bool = True):
        """Targets of every sampled RoI; ``concat=True`` joins the images in ``bbox2roi`` order.

        Returns ``(labels (R,), label_weights (R,), bbox_targets (R, 4), bbox_weights (R, 4))`` (lists per image
        when ``concat=False``).
        """
        per_image = [self._get_target_single(res.pos_bboxes, res.neg_bboxes, res.pos_gt_bboxes, res.pos_gt_labels,
                                             rcnn_train_cfg) for res in sampling_results]
        labels, label_weights, bbox_targets, bbox_weights = (list(t) for t in zip(*per_image))
        if concat:
            return (torch.cat(labels, 0), torch.cat(label_weights, 0), torch.cat(bbox_targets, 0),
                    torch.cat(bbox_weights, 0))
        return labels, label_weights, bbox_targets, bbox_weights

    def loss(self, cls_score: torch.Tensor | None, bbox_pred: torch.Tensor | None, rois: torch.Tensor,
             labels: torch.Tensor, label_weights: torch.Tensor, bbox_targets: torch.Tensor,
             bbox_weights: torch.Tensor, reduction_override: str | None = None) -> dict:
        """``loss_cls`` (CE averaged over RoIs with weight > 0), ``acc`` (%) and ``loss_bbox`` (positives only,
        the gt class's deltas, averaged over ALL sampled RoIs)."""
        losses = dict()
        if cls_score is not None:
            avg_factor = max(float(torch.sum(label_weights > 0).item()), 1.0)
            if cls_score.numel() > 0:
                loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=avg_factor,
                                         reduction_override=reduction_override)
                if isinstance(loss_cls, dict):
                    losses.update(loss_cls)
                else:
                    losses["loss_cls"] = loss_cls
                losses["acc"] = accuracy(cls_score, labels)
        if bbox_pred is not None:
            pos = (labels >= 0) & (labels < self.num_classes)
            if pos.any():
                if self.reg_decoded_bbox:
                    bbox_pred = self.bbox_coder.decode(rois[:, 1:], bbox_pred)
                if self.reg_class_agnostic:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), 4)[pos]
                else:
                    pos_pred = bbox_pred.view(bbox_pred.size(0), -1, 4)[pos, labels[pos]]
                losses["loss_bbox"] = self.loss_bbox(pos_pred, bbox_targets[pos], bbox_weights[pos],
                                                     avg_factor=bbox_targets.size(0),
                                                     reduction_override=reduction_override)
            else:
                losses["loss_bbox"] = bbox_pred[pos].sum()
        return losses

    # ------------------------------------------------------------------ inference
    def get_bboxes(self, rois: torch.Tensor, cls_score: torch.Tensor | None, bbox_pred: torch.Tensor | None,
                   img_shape, scale_factor, rescale: bool = False, cfg=None):
        """Decode one image's RoIs.

        Args:
            rois: ``(R, 5)``; cls_score ``(R, num_classes+1)`` logits; bbox_pred ``(R, 4|4*num_classes)``.
            img_shape: ``(h, w[, 3])`` of the resized image; boxes are clipped to ``[0, w] x [0, h]``.
            scale_factor: ``[w_scale, h_scale, w_scale, h_scale]``; boxes are divided by it when ``rescale``.
            cfg: ``None`` -> return ``(bboxes (R, 4|4*C), scores (R, C+1))``; else ``multiclass_nms`` with
                ``score_thr``, ``nms``, ``max_per_img`` -> ``(det_bboxes (n, 5), det_labels (n,))``.
        """
        scores = F.softmax(cls_score, dim=-1) if cls_score is not None else None
        if bbox_pred is not None:
            bboxes = self.bbox_coder.decode(rois[..., 1:], bbox_pred, max_shape=img_shape)
        else:
            bboxes = rois[:, 1:].clone()
            if img_shape is not None:
                bboxes[:, [0, 2]] = bboxes[:, [0, 2]].clamp(min=0, max=img_shape[1])
                bboxes[:, [1, 3]] = bboxes[:, [1, 3]].clamp(min=0, max=img_shape[0])
        if rescale and bboxes.size(0) > 0:
            factor = bboxes.new_tensor(scale_factor)
            bboxes = (bboxes.view(bboxes.size(0), -1, 4) / factor).view(bboxes.size(0), -1)
        if cfg is None:
            return bboxes, scores
        return multiclass_nms(bboxes, scores, cfg["score_thr"], cfg["nms"], cfg["max_per_img"])

    def regress_by_class(self, rois: torch.Tensor, label: torch.Tensor, bbox_pred: torch.Tensor,
                         img_meta: dict) -> torch.Tensor:
        """Apply the deltas of class ``label`` to ``rois`` (``(R, 4)`` or ``(R, 5)`` with batch index kept),
        clipped to ``img_meta['img_shape']``."""
        if not self.reg_class_agnostic:
            cols = (label * 4)[:, None] + torch.arange(4, device=label.device)
            bbox_pred = torch.gather(bbox_pred, 1, cols)
        if bbox_pred.size(1) != 4:
            raise ValueError(f"regress_by_class expects 4 deltas per RoI, got {bbox_pred.size(1)}")
        max_shape = img_meta["img_shape"]
        if rois.size(1) == 4:
            return self.bbox_coder.decode(rois, bbox_pred, max_shape=max_shape)
        boxes = self.bbox_coder.decode(rois[:, 1:], bbox_pred, max_shape=max_shape)
        return torch.cat([rois[:, :1], boxes], dim=1)

    def refine_bboxes(self, rois: torch.Tensor, labels: torch.Tensor, bbox_preds: torch.Tensor,
                      pos_is_gts: list[torch.Tensor], img_metas: list[dict]) -> list[torch.Tensor]:
        """Cascade training: regress every sampled RoI by its label, then drop the RoIs that were gt boxes.

        Args:
            rois: ``(R, 5)`` sampled RoIs of the batch; labels ``(R,)``; bbox_preds ``(R, 4|4*C)``.
            pos_is_gts: per image, ``(num_pos,)`` flags of positives that are gt boxes (they come first).
        Returns: per image, ``(n_i, 4)`` refined boxes.
        """
        num_imgs = len(img_metas)
        img_ids = rois[:, 0].long()
        if img_ids.numel() and int(img_ids.max()) >= num_imgs:
            raise ValueError(f"refine_bboxes: RoIs reference image {int(img_ids.max())} but only {num_imgs} "
                             f"img_metas were given")
        refined = []
        for i in range(num_imgs):
            inds = torch.nonzero(img_ids == i, as_tuple=False).squeeze(1)
            boxes = self.regress_by_class(rois[inds, 1:], labels[inds], bbox_preds[inds], img_metas[i])
            keep = torch.ones(inds.numel(), dtype=torch.bool, device=rois.device)
            keep[:len(pos_is_gts[i])] = ~pos_is_gts[i].bool()
            refined.append(boxes[keep])
        return refined
