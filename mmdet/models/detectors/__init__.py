"""Detectors (mmdetection 2.x type names)."""
from .base import BaseDetector
from .cascade_rcnn import CascadeRCNN
from .mask_rcnn import MaskRCNN
from .two_stage import TwoStageDetector

__all__ = ["BaseDetector", "TwoStageDetector", "MaskRCNN", "CascadeRCNN"]
