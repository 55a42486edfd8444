"""``AnchorHead`` (mmdetection 2.28): anchor-based dense head with assigner/sampler training targets."""
from __future__ import annotations

import warnings

import torch
from torch import nn

from mmdet.core.anchor import anchor_inside_flags, build_prior_generator, images_to_levels
from mmdet.core.bbox import build_assigner, build_bbox_coder, build_sampler
from mmdet.core.utils import multi_apply, unmap
from mmdet.models.builder import build_loss
from mmdet.models.layers.conv_module import normal_init

from .base_dense_head import BaseDenseHead

# losses whose heads use every anchor (PseudoSampler) and normalise by the positives only
_NON_SAMPLING_LOSSES = ("FocalLoss", "GHMC", "QualityFocalLoss")


def cfg_value(cfg, key: str, where: str):
    """``cfg[key]`` with one clear error line naming the config section when the key is missing."""
    if key not in cfg:
        raise KeyError(f"{where} has no '{key}' (mmdetection 2.x configs set it, e.g. see "
                       f"configs/_base_/models/mask_rcnn_r50_fpn.py)")
    return cfg[key]


class AnchorHead(BaseDenseHead):
    """Anchor-based head: a 1x1 ``conv_cls`` and ``conv_reg`` per level; training targets and losses.

    A base class here (no generic one-stage post-processing): :class:`RPNHead` adds ``_get_bboxes_single``.

    Args:
        num_classes: number of foreground classes.
        in_channels: input feature channels.
        feat_channels: hidden channels (used by subclasses).
        anchor_generator: prior generator config.
        bbox_coder: box coder config.
        reg_decoded_bbox: regress decoded boxes (e.g. for IoU losses) instead of deltas.
        loss_cls, loss_bbox: loss configs.
        train_cfg: ``assigner``, ``sampler``, ``allowed_border``, ``pos_weight``.
        test_cfg: ``nms_pre``, ``nms``, ``max_per_img``, ``min_bbox_size`` (RPN).
        norm_cfg: stored for subclasses (ViTDet fork).
        init_cfg: ``dict(type='Normal', layer='Conv2d', std=0.01)``.
    """

    def __init__(self, num_classes: int, in_channels: int, feat_channels: int = 256,
                 anchor_generator: dict = dict(type="AnchorGenerator", scales=[8, 16, 32], ratios=[0.5, 1.0, 2.0],
                                               strides=[4, 8, 16, 32, 64]),
                 bbox_coder: dict = dict(type="DeltaXYWHBBoxCoder", clip_border=True,
                                         target_means=(0.0, 0.0, 0.0, 0.0), target_stds=(1.0, 1.0, 1.0, 1.0)),
                 reg_decoded_bbox: bool = False,
                 loss_cls: dict = dict(type="CrossEntropyLoss", use_sigmoid=True, loss_weight=1.0),
                 loss_bbox: dict = dict(type="SmoothL1Loss", beta=1.0 / 9.0, loss_weight=1.0),
                 train_cfg: dict | None = None, test_cfg: dict | None = None, norm_cfg: dict | None = None,
                 init_cfg: dict | None = dict(type="Normal", layer="Conv2d", std=0.01)):
        super().__init__(init_cfg)
        self.in_channels = in_channels
        self.num_classes = num_classes
        self.feat_channels = feat_channels
        self.norm_cfg = norm_cfg
        self.use_sigmoid_cls = loss_cls.get("use_sigmoid", False)
        self.cls_out_channels = num_classes if self.use_sigmoid_cls else num_classes + 1
        if self.cls_out_channels <= 0:
            raise ValueError(f"num_classes={num_classes} is too small")
        self.reg_decoded_bbox = reg_decoded_bbox
        self.bbox_coder = build_bbox_coder(bbox_coder)
        self.loss_cls = build_loss(loss_cls)
        self.loss_bbox = build_loss(loss_bbox)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.sampling = False
        if self.train_cfg:
            self.assigner = build_assigner(cfg_value(train_cfg, "assigner", "train_cfg.rpn"))
            sampler_cfg = train_cfg.get("sampler", None)
            self.sampling = sampler_cfg is not None and str(sampler_cfg["type"]).split(".")[-1] != "PseudoSampler"
            if self.sampling and loss_cls["type"] in _NON_SAMPLING_LOSSES:
                warnings.warn(f"DeprecationWarning: {loss_cls['type']} does not need a sampler; PseudoSampler is used",
                              UserWarning)
                self.sampling = False
            self.sampler = build_sampler(sampler_cfg if self.sampling else dict(type="PseudoSampler"), context=self)
        self.fp16_enabled = False
        self.prior_generator = build_prior_generator(anchor_generator)
        self.num_base_priors = self.prior_generator.num_base_priors[0]
        self._init_layers()

    @property
    def anchor_generator(self):
        """Older name of ``prior_generator``."""
        return self.prior_generator

    @property
    def num_anchors(self) -> int:
        """Older name of ``num_base_priors``."""
        return self.num_base_priors

    def _init_layers(self) -> None:
        self.conv_cls = nn.Conv2d(self.in_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.conv_reg = nn.Conv2d(self.in_channels, self.num_base_priors * 4, 1)

    def init_weights(self) -> None:
        """``init_cfg`` ``Normal`` on every ``Conv2d`` of the head (mmdet default std 0.01, zero bias)."""
        if self.init_cfg is None:
            return
        cfg = dict(self.init_cfg)
        if cfg.get("type") != "Normal" or cfg.get("layer", "Conv2d") not in ("Conv2d", ["Conv2d"]):
            raise ValueError(f"{type(self).__name__} init_cfg supports dict(type='Normal', layer='Conv2d', std=...), "
                             f"got {self.init_cfg!r}")
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                normal_init(m, mean=cfg.get("mean", 0.0), std=cfg.get("std", 1.0), bias=cfg.get("bias", 0.0))

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, H, W)`` -> ``cls_score (B, A*cls_out, H, W)``, ``bbox_pred (B, A*4, H, W)``."""
        return self.conv_cls(x), self.conv_reg(x)

    def forward(self, feats: tuple[torch.Tensor, ...]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-level features -> ``(cls_scores, bbox_preds)`` lists over levels."""
        return multi_apply(self.forward_single, feats)

    # ------------------------------------------------------------------ targets
    def get_anchors(self, featmap_sizes, img_metas: list[dict], device="cuda"):
        """Anchors and valid flags per image and level.

        Returns:
            ``anchor_list[i][l]`` ``(H_l*W_l*A, 4)`` (shared by all images) and ``valid_flag_list[i][l]``
            ``(H_l*W_l*A,)`` bool from image ``i``'s ``pad_shape``.
        """
        multi_level_anchors = self.prior_generator.grid_priors(featmap_sizes, device=device)
        anchor_list = [multi_level_anchors for _ in img_metas]
        valid_flag_list = [self.prior_generator.valid_flags(featmap_sizes, meta["pad_shape"], device)
                           for meta in img_metas]
        return anchor_list, valid_flag_list

    def _get_targets_single(self, flat_anchors: torch.Tensor, valid_flags: torch.Tensor, gt_bboxes: torch.Tensor,
                            gt_bboxes_ignore: torch.Tensor | None, gt_labels: torch.Tensor | None, img_meta: dict,
                            label_channels: int = 1, unmap_outputs: bool = True):
        """Targets of one image over all its anchors ``(N, 4)``.

        Returns:
            ``labels (N,)`` (background = ``num_classes``), ``label_weights (N,)``, ``bbox_targets (N, 4)``,
            ``bbox_weights (N, 4)``, ``pos_inds``, ``neg_inds`` (into the inside anchors), ``sampling_result``;
            seven Nones when no anchor is inside the image.
        """
        inside_flags = anchor_inside_flags(flat_anchors, valid_flags, img_meta["img_shape"][:2],
                                           cfg_value(self.train_cfg, "allowed_border", "train_cfg.rpn"))
        if not inside_flags.any():
            return (None,) * 7
        anchors = flat_anchors[inside_flags, :]
        assign_result = self.assigner.assign(anchors, gt_bboxes, gt_bboxes_ignore,
                                             None if self.sampling else gt_labels)
        sampling_result = self.sampler.sample(assign_result, anchors, gt_bboxes)

        num_valid = anchors.shape[0]
        bbox_targets = torch.zeros_like(anchors)
        bbox_weights = torch.zeros_like(anchors)
        labels = anchors.new_full((num_valid,), self.num_classes, dtype=torch.long)
        label_weights = anchors.new_zeros(num_valid, dtype=torch.float)
        pos_inds, neg_inds = sampling_result.pos_inds, sampling_result.neg_inds
        if len(pos_inds) > 0:
            if self.reg_decoded_bbox:
                pos_bbox_targets = sampling_result.pos_gt_bboxes
            else:
                pos_bbox_targets = self.bbox_coder.encode(sampling_result.pos_bboxes, sampling_result.pos_gt_bboxes)
            bbox_targets[pos_inds, :] = pos_bbox_targets
            bbox_weights[pos_inds, :] = 1.0
            labels[pos_inds] = 0 if gt_labels is None else gt_labels[sampling_result.pos_assigned_gt_inds]
            pos_weight = self.train_cfg.get("pos_weight", -1)
            label_weights[pos_inds] = 1.0 if pos_weight <= 0 else pos_weight
        if len(neg_inds) > 0:
            label_weights[neg_inds] = 1.0

        if unmap_outputs:
            num_total = flat_anchors.size(0)
            labels = unmap(labels, num_total, inside_flags, fill=self.num_classes)
            label_weights = unmap(label_weights, num_total, inside_flags)
            bbox_targets = unmap(bbox_targets, num_total, inside_flags)
            bbox_weights = unmap(bbox_weights, num_total, inside_flags)
        return labels, label_weights, bbox_targets, bbox_weights, pos_inds, neg_inds, sampling_result

    def get_targets(self, anchor_list, valid_flag_list, gt_bboxes_list, img_metas, gt_bboxes_ignore_list=None,
                    gt_labels_list=None, label_channels: int = 1, unmap_outputs: bool = True,
                    return_sampling_results: bool = False):
        """Targets of a batch, split per level.

        Returns:
            ``labels_list``, ``label_weights_list``, ``bbox_targets_list``, ``bbox_weights_list`` (per level
            ``(B, n_l[, 4])``), ``num_total_pos``, ``num_total_neg`` (each image counts at least 1)
            [, ``sampling_results_list``]; None when some image has no anchor inside it.
        """
        num_imgs = len(img_metas)
        if not len(anchor_list) == len(valid_flag_list) == num_imgs:
            raise ValueError(f"get_targets: {len(anchor_list)} anchor lists and {len(valid_flag_list)} flag lists "
                             f"for {num_imgs} images")
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        concat_anchor_list = [torch.cat(anchors) for anchors in anchor_list]
        concat_valid_flag_list = [torch.cat(flags) for flags in valid_flag_list]
        if gt_bboxes_ignore_list is None:
            gt_bboxes_ignore_list = [None] * num_imgs
        if gt_labels_list is None:
            gt_labels_list = [None] * num_imgs
        results = multi_apply(self._get_targets_single, concat_anchor_list, concat_valid_flag_list, gt_bboxes_list,
                              gt_bboxes_ignore_list, gt_labels_list, img_metas, label_channels=label_channels,
                              unmap_outputs=unmap_outputs)
        all_labels, all_label_weights, all_bbox_targets, all_bbox_weights, pos_inds_list, neg_inds_list, \
            sampling_results_list = results[:7]
        if any(labels is None for labels in all_labels):
            return None
        num_total_pos = sum(max(inds.numel(), 1) for inds in pos_inds_list)
        num_total_neg = sum(max(inds.numel(), 1) for inds in neg_inds_list)
        res = (images_to_levels(all_labels, num_level_anchors), images_to_levels(all_label_weights, num_level_anchors),
               images_to_levels(all_bbox_targets, num_level_anchors),
               images_to_levels(all_bbox_weights, num_level_anchors), num_total_pos, num_total_neg)
        if return_sampling_results:
            res = res + (sampling_results_list,)
        return res + tuple(images_to_levels(r, num_level_anchors) for r in results[7:])

    # ------------------------------------------------------------------ loss
    def loss_single(self, cls_score: torch.Tensor, bbox_pred: torch.Tensor, anchors: torch.Tensor,
                    labels: torch.Tensor, label_weights: torch.Tensor, bbox_targets: torch.Tensor,
                    bbox_weights: torch.Tensor, num_total_samples: int):
        """Losses of one level: ``cls_score (B, A*C, H, W)``, ``bbox_pred (B, A*4, H, W)``, targets ``(B, HWA[, 4])``,
        both normalised by ``num_total_samples``."""
        labels = labels.reshape(-1)
        label_weights = label_weights.reshape(-1)
        cls_score = cls_score.permute(0, 2, 3, 1).reshape(-1, self.cls_out_channels)
        loss_cls = self.loss_cls(cls_score, labels, label_weights, avg_factor=num_total_samples)
        bbox_targets = bbox_targets.reshape(-1, 4)
        bbox_weights = bbox_weights.reshape(-1, 4)
        bbox_pred = bbox_pred.permute(0, 2, 3, 1).reshape(-1, 4)
        if self.reg_decoded_bbox:
            bbox_pred = self.bbox_coder.decode(anchors.reshape(-1, 4), bbox_pred)
        loss_bbox = self.loss_bbox(bbox_pred, bbox_targets, bbox_weights, avg_factor=num_total_samples)
        return loss_cls, loss_bbox

    def loss(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor], gt_bboxes: list[torch.Tensor],
             gt_labels: list[torch.Tensor] | None, img_metas: list[dict],
             gt_bboxes_ignore: list[torch.Tensor] | None = None) -> dict | None:
        """Per-level classification and regression losses (computed in float32).

        The divisor of every level is ``num_total_samples`` = sampled positives + negatives over the whole
        batch (positives only without sampling).

        Returns:
            ``dict(loss_cls=[per level], loss_bbox=[per level])``, or None when some image has no anchor inside.
        """
        cls_scores = [s.float() for s in cls_scores]
        bbox_preds = [p.float() for p in bbox_preds]
        featmap_sizes = [featmap.size()[-2:] for featmap in cls_scores]
        if len(featmap_sizes) != self.prior_generator.num_levels:
            raise ValueError(f"{type(self).__name__}.loss got {len(featmap_sizes)} levels, the anchor generator has "
                             f"{self.prior_generator.num_levels}")
        anchor_list, valid_flag_list = self.get_anchors(featmap_sizes, img_metas, device=cls_scores[0].device)
        label_channels = self.cls_out_channels if self.use_sigmoid_cls else 1
        targets = self.get_targets(anchor_list, valid_flag_list, gt_bboxes, img_metas,
                                   gt_bboxes_ignore_list=gt_bboxes_ignore, gt_labels_list=gt_labels,
                                   label_channels=label_channels)
        if targets is None:
            return None
        labels_list, label_weights_list, bbox_targets_list, bbox_weights_list, num_total_pos, num_total_neg = targets
        num_total_samples = num_total_pos + num_total_neg if self.sampling else num_total_pos
        num_level_anchors = [anchors.size(0) for anchors in anchor_list[0]]
        all_anchor_list = images_to_levels([torch.cat(anchors) for anchors in anchor_list], num_level_anchors)
        losses_cls, losses_bbox = multi_apply(self.loss_single, cls_scores, bbox_preds, all_anchor_list, labels_list,
                                              label_weights_list, bbox_targets_list, bbox_weights_list,
                                              num_total_samples=num_total_samples)
        return dict(loss_cls=losses_cls, loss_bbox=losses_bbox)
