"""RoI feature extractors and the RoI pooling layers they build."""
from .roi_align import RoIAlign, RoIPool
from .single_level_roi_extractor import SingleRoIExtractor

__all__ = ["RoIAlign", "RoIPool", "SingleRoIExtractor"]
