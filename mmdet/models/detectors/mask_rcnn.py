"""``MaskRCNN`` (mmdetection 2.x type name)."""
from mmdet.registry import DETECTORS

from .two_stage import TwoStageDetector

__all__ = ["MaskRCNN"]


@DETECTORS.register_module()
class MaskRCNN(TwoStageDetector):
    """Mask R-CNN: a :class:`TwoStageDetector` whose ``roi_head`` has a mask head."""

    def __init__(self, backbone, rpn_head, roi_head, train_cfg, test_cfg, neck=None, pretrained=None,
                 init_cfg=None, channels_last=False):
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head, roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, pretrained=pretrained, init_cfg=init_cfg,
                         channels_last=channels_last)
