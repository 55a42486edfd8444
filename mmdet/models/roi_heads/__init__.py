"""RoI heads, RoI extractors, box and mask heads (mmdetection 2.x type names)."""
from .base_roi_head import BaseRoIHead
from .bbox_heads import BBoxHead, ConvFCBBoxHead, Shared2FCBBoxHead, Shared4Conv1FCBBoxHead
from .cascade_roi_head import CascadeRoIHead
from .mask_heads import FCNMaskHead
from .roi_extractors import RoIAlign, RoIPool, SingleRoIExtractor
from .standard_roi_head import StandardRoIHead
from .test_mixins import BBoxTestMixin, MaskTestMixin

__all__ = ["BaseRoIHead", "StandardRoIHead", "CascadeRoIHead", "BBoxTestMixin", "MaskTestMixin", "BBoxHead",
           "ConvFCBBoxHead", "Shared2FCBBoxHead", "Shared4Conv1FCBBoxHead", "FCNMaskHead", "SingleRoIExtractor",
           "RoIAlign", "RoIPool"]
