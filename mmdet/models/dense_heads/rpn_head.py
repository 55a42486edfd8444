"""``RPNHead`` (mmdetection 2.28, plus the ViTDet fork's ``num_convs``/``norm_cfg`` conv tower)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from mmdet.core.post_processing import batched_nms, upgrade_rpn_test_cfg
from mmdet.models.layers.conv_module import ConvModule
from mmdet.registry import HEADS

from .anchor_head import AnchorHead, cfg_value


@HEADS.register_module()
class RPNHead(AnchorHead):
    """Region proposal head: ``rpn_conv`` (3x3) -> ReLU -> ``rpn_cls`` (1x1, A sigmoid logits) and ``rpn_reg``
    (1x1, 4A deltas).

    Key names: ``rpn_conv.{weight,bias}`` (plain conv) or, with ``num_convs > 1``, ``rpn_conv.{i}.conv.*`` plus
    ``rpn_conv.{i}.ln.*`` / ``.bn.*`` when ``norm_cfg`` is set (ViTDet: ``num_convs=2``, ``norm_cfg=LN``);
    ``rpn_cls.*``, ``rpn_reg.*``.

    Args:
        in_channels: input channels.
        init_cfg: ``Normal(std=0.01)`` on every Conv2d.
        num_convs: convs in the tower (``> 1``: ConvModules 3x3 + norm + ReLU).
        **kwargs: :class:`AnchorHead` arguments (``num_classes`` is forced to 1); ``norm_cfg`` is used by the
            tower when ``num_convs > 1``.
    """

    def __init__(self, in_channels: int, init_cfg: dict | None = dict(type="Normal", layer="Conv2d", std=0.01),
                 num_convs: int = 1, **kwargs):
        self.num_convs = num_convs
        kwargs.pop("num_classes", None)
        super().__init__(1, in_channels, init_cfg=init_cfg, **kwargs)

    def _init_layers(self) -> None:
        if self.num_convs > 1:
            self.rpn_conv = nn.Sequential(*[
                ConvModule(self.in_channels if i == 0 else self.feat_channels, self.feat_channels, 3, padding=1,
                           norm_cfg=self.norm_cfg, inplace=False)
                for i in range(self.num_convs)])
        else:
            self.rpn_conv = nn.Conv2d(self.in_channels, self.feat_channels, 3, padding=1)
        self.rpn_cls = nn.Conv2d(self.feat_channels, self.num_base_priors * self.cls_out_channels, 1)
        self.rpn_reg = nn.Conv2d(self.feat_channels, self.num_base_priors * 4, 1)

    def forward_single(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, H, W)`` -> ``rpn_cls_score (B, A, H, W)``, ``rpn_bbox_pred (B, 4A, H, W)``."""
        x = F.relu(self.rpn_conv(x), inplace=False)
        return self.rpn_cls(x), self.rpn_reg(x)

    def loss(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor], gt_bboxes: list[torch.Tensor],
             img_metas: list[dict], gt_bboxes_ignore: list[torch.Tensor] | None = None) -> dict:
        """RPN losses: ``dict(loss_rpn_cls=[per level], loss_rpn_bbox=[per level])`` (see ``AnchorHead.loss``)."""
        losses = super().loss(cls_scores, bbox_preds, gt_bboxes, None, img_metas, gt_bboxes_ignore=gt_bboxes_ignore)
        if losses is None:
            raise ValueError("RPNHead.loss: an image has no valid anchor inside its img_shape; check img_shape / "
                             "pad_shape in img_metas and train_cfg.rpn.allowed_border")
        return dict(loss_rpn_cls=losses["loss_cls"], loss_rpn_bbox=losses["loss_bbox"])

    def _get_bboxes_single(self, cls_score_list: list[torch.Tensor], bbox_pred_list: list[torch.Tensor],
                           score_factor_list, mlvl_anchors: list[torch.Tensor], img_meta: dict, cfg=None,
                           rescale: bool = False, with_nms: bool = True, **kwargs) -> torch.Tensor:
        """Proposals of one image.

        Per level: sigmoid scores in ``(y, x, a)`` order; the top ``nms_pre`` of the level (if it has more).
        Then all levels: decode clipped to ``img_shape``, drop boxes with ``w <= min_bbox_size`` or
        ``h <= min_bbox_size`` (mmdet >= 2.18, also for 0), NMS per level, keep the first ``max_per_img``.

        Args:
            cls_score_list: per level ``(A, H, W)`` logits.
            bbox_pred_list: per level ``(4A, H, W)`` deltas.
            mlvl_anchors: per level ``(H*W*A, 4)``.
            img_meta: needs ``img_shape``.
            cfg: ``nms_pre``, ``nms``, ``max_per_img``, ``min_bbox_size``; ``self.test_cfg`` when None.

        Returns:
            ``(K, 5)`` ``[x1, y1, x2, y2, score]`` in resized-image coordinates, score descending.
        """
        cfg = upgrade_rpn_test_cfg(self.test_cfg if cfg is None else cfg)
        nms_pre = cfg.get("nms_pre", -1)
        mlvl_scores, mlvl_bbox_preds, mlvl_valid_anchors, level_ids = [], [], [], []
        for level_idx, (cls_score, bbox_pred) in enumerate(zip(cls_score_list, bbox_pred_list)):
            if cls_score.shape[-2:] != bbox_pred.shape[-2:]:
                raise ValueError(f"RPNHead level {level_idx}: score map {tuple(cls_score.shape)} and box map "
                                 f"{tuple(bbox_pred.shape)} differ in size")
            cls_score = cls_score.permute(1, 2, 0)
            if self.use_sigmoid_cls:
                scores = cls_score.reshape(-1).sigmoid()
            else:  # two-logit softmax, foreground = column 0 (mmdet >= 2.5)
                scores = cls_score.reshape(-1, 2).softmax(dim=1)[:, 0]
            bbox_pred = bbox_pred.permute(1, 2, 0).reshape(-1, 4)
            anchors = mlvl_anchors[level_idx]
            if 0 < nms_pre < scores.shape[0]:
                scores, topk_inds = scores.topk(nms_pre)
                bbox_pred = bbox_pred[topk_inds, :]
                anchors = anchors[topk_inds, :]
            mlvl_scores.append(scores)
            mlvl_bbox_preds.append(bbox_pred)
            mlvl_valid_anchors.append(anchors)
            level_ids.append(scores.new_full((scores.size(0),), level_idx, dtype=torch.long))
        return self._bbox_post_process(mlvl_scores, mlvl_bbox_preds, mlvl_valid_anchors, level_ids, cfg,
                                       img_meta["img_shape"])

    def _bbox_post_process(self, mlvl_scores, mlvl_bboxes, mlvl_valid_anchors, level_ids, cfg, img_shape,
                           **kwargs) -> torch.Tensor:
        """Decode, zero/min-size filter, per-level NMS and top ``max_per_img`` of one image's candidates."""
        scores = torch.cat(mlvl_scores)
        anchors = torch.cat(mlvl_valid_anchors)
        proposals = self.bbox_coder.decode(anchors, torch.cat(mlvl_bboxes), max_shape=img_shape)
        ids = torch.cat(level_ids)
        min_bbox_size = cfg_value(cfg, "min_bbox_size", "test_cfg.rpn / train_cfg.rpn_proposal")
        if min_bbox_size >= 0:
            w = proposals[:, 2] - proposals[:, 0]
            h = proposals[:, 3] - proposals[:, 1]
            valid_mask = (w > min_bbox_size) & (h > min_bbox_size)
            if not valid_mask.all():
                proposals, scores, ids = proposals[valid_mask], scores[valid_mask], ids[valid_mask]
        if proposals.numel() == 0:
            return proposals.new_zeros(0, 5)
        dets, _ = batched_nms(proposals, scores, ids, cfg_value(cfg, "nms", "test_cfg.rpn / train_cfg.rpn_proposal"))
        return dets[:cfg_value(cfg, "max_per_img", "test_cfg.rpn / train_cfg.rpn_proposal")]
