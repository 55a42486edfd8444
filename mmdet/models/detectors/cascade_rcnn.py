"""``CascadeRCNN`` (mmdetection 2.x type name)."""
from mmdet.registry import DETECTORS

from .two_stage import TwoStageDetector

__all__ = ["CascadeRCNN"]


@DETECTORS.register_module()
class CascadeRCNN(TwoStageDetector):
    """Cascade (Mask) R-CNN: a :class:`TwoStageDetector` with a ``CascadeRoIHead`` (mask branch iff
    ``roi_head.mask_head`` is set)."""

    def __init__(self, backbone, neck=None, rpn_head=None, roi_head=None, train_cfg=None, test_cfg=None,
                 pretrained=None, init_cfg=None, channels_last=False):
        super().__init__(backbone=backbone, neck=neck, rpn_head=rpn_head, roi_head=roi_head, train_cfg=train_cfg,
                         test_cfg=test_cfg, pretrained=pretrained, init_cfg=init_cfg,
                         channels_last=channels_last)

    def show_result(self, data, result, **kwargs):
        """Accepts mmdet's multi-scale ``{'ensemble': ...}`` results too."""
        if isinstance(result, dict):
            result = result["ensemble"]
        return super().show_result(data, result, **kwargs)
