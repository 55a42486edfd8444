"""``build_*`` functions of mmdetection 2.x's ``mmdet.models`` interface."""
from __future__ import annotations

import warnings

from mmdet.engine.registry import build_from_cfg
from mmdet.registry import BACKBONES, DETECTORS, HEADS, LOSSES, MODELS, NECKS, ROI_EXTRACTORS, SHARED_HEADS

__all__ = ["MODELS", "BACKBONES", "NECKS", "HEADS", "LOSSES", "DETECTORS", "ROI_EXTRACTORS", "SHARED_HEADS",
           "build_backbone", "build_neck", "build_head", "build_loss", "build_roi_extractor", "build_shared_head",
           "build_detector"]


def build_backbone(cfg):
    return build_from_cfg(cfg, BACKBONES)


def build_neck(cfg):
    return build_from_cfg(cfg, NECKS)


def build_roi_extractor(cfg):
    return build_from_cfg(cfg, ROI_EXTRACTORS)


def build_shared_head(cfg):
    return build_from_cfg(cfg, SHARED_HEADS)


def build_head(cfg):
    return build_from_cfg(cfg, HEADS)


def build_loss(cfg):
    return build_from_cfg(cfg, LOSSES)


def build_detector(cfg, train_cfg=None, test_cfg=None):
    """Build a detector; ``train_cfg`` / ``test_cfg`` may sit inside ``cfg`` (seed style) or be passed here."""
    cfg = dict(cfg)
    if train_cfg is not None or test_cfg is not None:
        warnings.warn("train_cfg and test_cfg are deprecated outside the model config; put them inside model=dict(...)",
                      UserWarning)
        if "train_cfg" in cfg and train_cfg is not None:
            raise ValueError("train_cfg is given both at the top level and inside model; keep only model.train_cfg")
        if "test_cfg" in cfg and test_cfg is not None:
            raise ValueError("test_cfg is given both at the top level and inside model; keep only model.test_cfg")
        if train_cfg is not None:
            cfg["train_cfg"] = train_cfg
        if test_cfg is not None:
            cfg["test_cfg"] = test_cfg
    return build_from_cfg(cfg, DETECTORS)
