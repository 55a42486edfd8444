"""Instance-mask structures, result encoding and mask targets (mmdetection 2.x ``mmdet.core.mask``)."""
from .mask_target import mask_target
from .structures import BaseInstanceMasks, BitmapMasks, PolygonMasks, polygon_to_bitmap
from .utils import encode_mask_results, mask2ndarray, split_combined_polys

__all__ = [
    "BaseInstanceMasks", "BitmapMasks", "PolygonMasks", "polygon_to_bitmap", "encode_mask_results",
    "mask2ndarray", "split_combined_polys", "mask_target",
]
