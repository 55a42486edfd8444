"""``build_assigner`` / ``build_sampler`` / ``build_bbox_coder`` of mmdetection 2.x."""
from mmdet.engine.registry import build_from_cfg
from mmdet.registry import BBOX_ASSIGNERS, BBOX_CODERS, BBOX_SAMPLERS


def build_assigner(cfg, **default_args):
    """Build an assigner, e.g. ``dict(type='MaxIoUAssigner', pos_iou_thr=0.7, neg_iou_thr=0.3)``."""
    return build_from_cfg(cfg, BBOX_ASSIGNERS, default_args)


def build_sampler(cfg, **default_args):
    """Build a sampler; extra keyword arguments (mmdet passes ``context=head``) go to the constructor."""
    return build_from_cfg(cfg, BBOX_SAMPLERS, default_args)


def build_bbox_coder(cfg, **default_args):
    """Build a box coder, e.g. ``dict(type='DeltaXYWHBBoxCoder')``."""
    return build_from_cfg(cfg, BBOX_CODERS, default_args)
