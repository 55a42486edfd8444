"""Anchors of mmdetection 2.x."""
from mmdet.registry import ANCHOR_GENERATORS, PRIOR_GENERATORS

from .anchor_generator import AnchorGenerator
from .builder import build_anchor_generator, build_prior_generator
from .utils import anchor_inside_flags, images_to_levels

__all__ = ["AnchorGenerator", "ANCHOR_GENERATORS", "PRIOR_GENERATORS", "build_anchor_generator",
           "build_prior_generator", "anchor_inside_flags", "images_to_levels"]
