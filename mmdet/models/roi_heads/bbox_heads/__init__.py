"""RCNN box heads."""
from .bbox_head import BBoxHead
from .convfc_bbox_head import ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead

__all__ = ["BBoxHead", "ConvFCBBoxHead", "Shared2FCBBoxHead", "Shared4Conv1FCBBoxHead"]
