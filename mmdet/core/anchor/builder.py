"""``build_prior_generator`` / ``build_anchor_generator`` of mmdetection 2.x."""
from mmdet.engine.registry import build_from_cfg
from mmdet.registry import ANCHOR_GENERATORS, PRIOR_GENERATORS


def build_prior_generator(cfg, default_args=None):
    """Build a prior (anchor) generator, e.g. ``dict(type='AnchorGenerator', strides=[4], ratios=[1.0], ...)``."""
    return build_from_cfg(cfg, PRIOR_GENERATORS, default_args)


def build_anchor_generator(cfg, default_args=None):
    """Older name of :func:`build_prior_generator`."""
    return build_from_cfg(cfg, ANCHOR_GENERATORS, default_args)
