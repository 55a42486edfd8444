"""``BaseRoIHead``: the RCNN part of a two-stage detector (mmdetection 2.x interface)."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

from torch import nn

from mmdet.models.builder import build_shared_head
from mmdet.models.layers.conv_module import init_children_weights

__all__ = ["BaseRoIHead"]


class BaseRoIHead(nn.Module, metaclass=ABCMeta):
    """Holds the RoI extractors / bbox head / mask head built by :meth:`init_bbox_head` / :meth:`init_mask_head`
    and the assigner/sampler built from ``train_cfg`` by :meth:`init_assigner_sampler`.

    Args: ``bbox_roi_extractor, bbox_head, mask_roi_extractor, mask_head, shared_head, train_cfg, test_cfg,
    pretrained, init_cfg`` (mmdetection 2.28).
    """

    def __init__(self, bbox_roi_extractor=None, bbox_head=None, mask_roi_extractor=None, mask_head=None,
                 shared_head=None, train_cfg=None, test_cfg=None, pretrained=None, init_cfg=None):
        super().__init__()
        self.train_cfg = train_cfg
        self.test_cfg = test_cfg
        self.pretrained = pretrained
        self.init_cfg = init_cfg
        if shared_head is not None:
            self.shared_head = build_shared_head(shared_head)
        if bbox_head is not None:
            self.init_bbox_head(bbox_roi_extractor, bbox_head)
        if mask_head is not None:
            self.init_mask_head(mask_roi_extractor, mask_head)
        self.init_assigner_sampler()

    @property
    def with_bbox(self) -> bool:
        return getattr(self, "bbox_head", None) is not None

    @property
    def with_mask(self) -> bool:
        return getattr(self, "mask_head", None) is not None

    @property
    def with_shared_head(self) -> bool:
        return getattr(self, "shared_head", None) is not None

    def init_weights(self) -> None:
        """Apply the heads' mmdet default initialisations (see :func:`init_children_weights`)."""
        init_children_weights(self)

    @abstractmethod
    def init_bbox_head(self, bbox_roi_extractor, bbox_head):
        """Build ``self.bbox_roi_extractor`` and ``self.bbox_head``."""

    @abstractmethod
    def init_mask_head(self, mask_roi_extractor, mask_head):
        """Build ``self.mask_roi_extractor`` and ``self.mask_head``."""

    @abstractmethod
    def init_assigner_sampler(self):
        """Build ``self.bbox_assigner`` / ``self.bbox_sampler`` from ``self.train_cfg``."""

    @abstractmethod
    def forward_train(self, x, img_metas, proposal_list, gt_bboxes, gt_labels, gt_bboxes_ignore=None,
                      gt_masks=None, **kwargs):
        """Losses of the RCNN part."""

    @abstractmethod
    def simple_test(self, x, proposal_list, img_metas, proposals=None, rescale=False, **kwargs):
        """Results of a single-scale test."""

    @abstractmethod
    def aug_test(self, x, proposal_list, img_metas, rescale=False, **kwargs):
        """Results of a multi-augmentation test (one image, several views)."""
