"""``TwoStageDetector``: backbone -> neck -> RPN -> RoI head (mmdetection 2.x)."""
from __future__ import annotations

import warnings

import torch

from mmdet.models.builder import build_backbone, build_head, build_neck
from mmdet.registry import DETECTORS

from .base import BaseDetector

__all__ = ["TwoStageDetector"]


def _sub_cfg(cfg, key: str):
    return None if cfg is None else cfg.get(key)


@DETECTORS.register_module()
class TwoStageDetector(BaseDetector):
    """Args: ``backbone, neck=None, rpn_head=None, roi_head=None, train_cfg=None, test_cfg=None, pretrained=None,
    init_cfg=None, channels_last=False``. ``rpn_head`` gets ``train_cfg.rpn`` / ``test_cfg.rpn``; ``roi_head`` gets
    ``train_cfg.rcnn`` / ``test_cfg.rcnn``. ``pretrained`` goes to ``backbone.init_weights`` in :meth:`init_weights`.
    ``channels_last``: see :class:`BaseDetector`; the RoI head then gets contiguous (NCHW) feature maps, since
    RoIAlign would otherwise copy every level at every call."""

    def __init__(self, backbone: dict, neck: dict | None = None, rpn_head: dict | None = None,
                 roi_head: dict | None = None, train_cfg=None, test_cfg=None, pretrained: str | None = None,
                 init_cfg=None, channels_last: bool = False):
        super().__init__(init_cfg, channels_last=channels_last)
        if pretrained is not None:
            warnings.warn("model.pretrained is deprecated in mmdetection >= 2.12; it is passed to "
                          "backbone.init_weights(pretrained=...) by init_weights()")
        self.pretrained = pretrained
        self.backbone = build_backbone(backbone)
        if neck is not None:
            self.neck = build_neck(neck)
        if rpn_head is not None:
            rpn_cfg = dict(rpn_head)
            rpn_cfg.update(train_cfg=_sub_cfg(train_cfg, "rpn"), test_cfg=_sub_cfg(test_cfg, "rpn"))
            self.rpn_head = build_head(rpn_cfg)
        if roi_head is not None:
            roi_cfg = dict(roi_head)
            roi_cfg.update(train_cfg=_sub_cfg(train_cfg, "rcnn"), test_cfg=_sub_cfg(test_cfg, "rcnn"))
            roi_cfg.setdefault("pretrained", pretrained)
            self.roi_head = build_head(roi_cfg)
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.apply_memory_format()

    @property
    def with_rpn(self) -> bool:
        return getattr(self, "rpn_head", None) is not None

    @property
    def with_roi_head(self) -> bool:
        return getattr(self, "roi_head", None) is not None

    def extract_feat(self, img: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(N, 3, H, W)`` -> backbone levels, then the neck's levels."""
        x = self.backbone(img)
        return self.neck(x) if self.with_neck else x

    def roi_feats(self, x: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        """The feature maps as the RoI head gets them: NCHW-contiguous (one copy per level) under channels_last."""
        return tuple(f.contiguous() for f in x) if self.channels_last else x

    def forward_dummy(self, img: torch.Tensor) -> tuple:
        """Network outputs without post-processing (for FLOPs counting)."""
        x = self.extract_feat(img)
        outs = ()
        proposals = torch.randn(1000, 4, device=img.device)
        if self.with_rpn:
            outs += (self.rpn_head(x),)
        return outs + self.roi_head.forward_dummy(self.roi_feats(x), proposals)

    def forward_train(self, img: torch.Tensor, img_metas: list[dict], gt_bboxes: list[torch.Tensor],
                      gt_labels: list[torch.Tensor], gt_bboxes_ignore=None, gt_masks=None, proposals=None,
                      **kwargs) -> dict:
        """Losses: ``loss_rpn_cls`` / ``loss_rpn_bbox`` (per-level lists) and the RoI head's.

        Args:
            img: ``(N, 3, H, W)`` padded batch; img_metas: per image meta dicts.
            gt_bboxes: per image ``(g, 4)`` in resized-image coordinates; gt_labels: per image ``(g,)`` in 0..C-1.
            gt_bboxes_ignore: per image ``(k, 4)`` or None; gt_masks: per image mask structures.
            proposals: per image precomputed proposals when there is no RPN.
        """
        super().forward_train(img, img_metas)
        x = self.extract_feat(img)
        losses = dict()
        if self.with_rpn:
            proposal_cfg = _sub_cfg(self.train_cfg, "rpn_proposal") or _sub_cfg(self.test_cfg, "rpn")
            rpn_losses, proposal_list = self.rpn_head.forward_train(
                x, img_metas, gt_bboxes, gt_labels=None, gt_bboxes_ignore=gt_bboxes_ignore,
                proposal_cfg=proposal_cfg, **kwargs)
            losses.update(rpn_losses)
        else:
            if proposals is None:
                raise ValueError("a detector without rpn_head needs precomputed proposals in forward_train")
            proposal_list = proposals
        losses.update(self.roi_head.forward_train(self.roi_feats(x), img_metas, proposal_list, gt_bboxes, gt_labels,
                                                  gt_bboxes_ignore, gt_masks, **kwargs))
        return losses

    def simple_test(self, img: torch.Tensor, img_metas: list[dict], proposals=None, rescale: bool = False) -> list:
        """Per image ``bbox_results`` or ``(bbox_results, segm_results)``."""
        if not self.with_bbox:
            raise RuntimeError(f"{type(self).__name__}.simple_test needs a roi_head with a bbox_head")
        x = self.extract_feat(img)
        proposal_list = self.rpn_head.simple_test_rpn(x, img_metas) if proposals is None else proposals
        return self.roi_head.simple_test(self.roi_feats(x), proposal_list, img_metas, rescale=rescale)

    def aug_test(self, imgs: list[torch.Tensor], img_metas: list[list[dict]], rescale: bool = False) -> list:
        """Test-time augmentation (e.g. flip): RPN proposals merged over views, then the RoI head's aug_test."""
        x = self.extract_feats(imgs)
        proposal_list = self.rpn_head.aug_test_rpn(x, img_metas)
        return self.roi_head.aug_test([self.roi_feats(f) for f in x], proposal_list, img_metas, rescale=rescale)
