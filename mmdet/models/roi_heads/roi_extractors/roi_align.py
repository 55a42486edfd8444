"""RoI pooling layers registered in ``ROI_LAYERS`` (mmcv ``RoIAlign`` / ``RoIPool`` via torchvision ops)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn.modules.utils import _pair
from torchvision.ops import roi_align, roi_pool

from mmdet.registry import ROI_LAYERS

__all__ = ["RoIAlign", "RoIPool"]


@ROI_LAYERS.register_module()
class RoIAlign(nn.Module):
    """mmcv ``RoIAlign``: average of bilinear samples per bin (``torchvision.ops.roi_align``).

    Args:
        output_size: ``k`` or ``(kh, kw)``.
        spatial_scale: feature-map scale (1 / stride), set by the RoI extractor.
        sampling_ratio: samples per bin side; 0 = adaptive ``ceil(roi_size / k)``.
        pool_mode: only ``'avg'``.
        aligned: shift the box by -0.5 pixel (pixel-centre model); mmcv's default True.
        use_torchvision: accepted for config compatibility (torchvision is always used).

    Forward: ``feats (N, C, H, W)``, ``rois (R, 5)`` = ``[batch_idx, x1, y1, x2, y2]`` -> ``(R, C, kh, kw)``.
    """

    def __init__(self, output_size, spatial_scale: float = 1.0, sampling_ratio: int = 0, pool_mode: str = "avg",
                 aligned: bool = True, use_torchvision: bool = False):
        super().__init__()
        if pool_mode != "avg":
            raise ValueError(f"RoIAlign pool_mode={pool_mode!r} is not supported; use pool_mode='avg'")
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.pool_mode = pool_mode
        self.aligned = aligned
        self.use_torchvision = use_torchvision

    def forward(self, feats: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_align(feats, rois.to(feats.dtype), self.output_size, self.spatial_scale, self.sampling_ratio,
                         self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


@ROI_LAYERS.register_module()
class RoIPool(nn.Module):
    """mmcv ``RoIPool`` (max over quantised bins, ``torchvision.ops.roi_pool``). Same I/O as :class:`RoIAlign`."""

    def __init__(self, output_size, spatial_scale: float = 1.0):
        super().__init__()
        self.output_size = _pair(output_size)
        self.spatial_scale = float(spatial_scale)

    def forward(self, feats: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        return roi_pool(feats, rois.to(feats.dtype), self.output_size, self.spatial_scale)
