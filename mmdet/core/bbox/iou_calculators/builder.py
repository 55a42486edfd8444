from mmdet.engine.registry import build_from_cfg
from mmdet.registry import IOU_CALCULATORS


def build_iou_calculator(cfg, default_args=None):
    """Build an IoU calculator such as ``dict(type='BboxOverlaps2D')``."""
    return build_from_cfg(cfg, IOU_CALCULATORS, default_args)
