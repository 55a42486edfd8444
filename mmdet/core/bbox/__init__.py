"""Box machinery of mmdetection 2.x: IoU, assigners, samplers, coders, format transforms."""
from .assigners import AssignResult, BaseAssigner, MaxIoUAssigner
from .builder import build_assigner, build_bbox_coder, build_sampler
from .coder import BaseBBoxCoder, DeltaXYWHBBoxCoder, bbox2delta, delta2bbox
from .iou_calculators import BboxOverlaps2D, bbox_overlaps, build_iou_calculator
from .samplers import BaseSampler, PseudoSampler, RandomSampler, SamplingResult
from .transforms import (bbox2result, bbox2roi, bbox_cxcywh_to_xyxy, bbox_flip, bbox_mapping, bbox_mapping_back,
                         bbox_xyxy_to_cxcywh, roi2bbox)

__all__ = ["bbox_overlaps", "BboxOverlaps2D", "build_iou_calculator", "BaseAssigner", "MaxIoUAssigner",
           "AssignResult", "BaseSampler", "PseudoSampler", "RandomSampler", "SamplingResult", "build_assigner",
           "build_sampler", "build_bbox_coder", "BaseBBoxCoder", "DeltaXYWHBBoxCoder", "bbox2delta", "delta2bbox",
           "bbox_flip", "bbox_mapping", "bbox_mapping_back", "bbox2roi", "roi2bbox", "bbox2result",
           "bbox_xyxy_to_cxcywh", "bbox_cxcywh_to_xyxy"]
