"""``SingleRoIExtractor``: pool each RoI from the one FPN level that matches its scale."""
from __future__ import annotations

import torch
from torch import nn

from mmdet.engine.registry import build_from_cfg
from mmdet.registry import ROI_EXTRACTORS, ROI_LAYERS

__all__ = ["SingleRoIExtractor"]


@ROI_EXTRACTORS.register_module()
class SingleRoIExtractor(nn.Module):
    """mmdetection 2.x ``SingleRoIExtractor``.

    Args:
        roi_layer: e.g. ``dict(type='RoIAlign', output_size=7, sampling_ratio=0)``; one copy per stride with
            ``spatial_scale = 1 / stride``.
        out_channels: feature channels.
        featmap_strides: strides of the levels used (``[4, 8, 16, 32]``); ``num_inputs`` = their count.
        finest_scale: RoIs of scale ``sqrt(w*h) < 2 * finest_scale`` go to level 0.

    Level of a RoI: ``floor(log2(sqrt(w*h) / finest_scale + 1e-6))`` clamped to ``[0, num_levels - 1]``.
    Forward: ``feats`` (tuple of ``(N, C, H_l, W_l)``), ``rois (R, 5)`` -> ``(R, C, k, k)`` in RoI order.
    """

    def __init__(self, roi_layer: dict, out_channels: int, featmap_strides: list[int], finest_scale: int = 56,
                 init_cfg: dict | None = None):
        super().__init__()
        self.roi_layers = nn.ModuleList(
            build_from_cfg(roi_layer, ROI_LAYERS, dict(spatial_scale=1.0 / s)) for s in featmap_strides)
        self.out_channels = out_channels
        self.featmap_strides = list(featmap_strides)
        self.finest_scale = finest_scale
        self.init_cfg = init_cfg

    @property
    def num_inputs(self) -> int:
        return len(self.featmap_strides)

    def map_roi_levels(self, rois: torch.Tensor, num_levels: int) -> torch.Tensor:
        """``rois (R, 5)`` -> level index ``(R,)`` int64."""
        scale = torch.sqrt((rois[:, 3] - rois[:, 1]) * (rois[:, 4] - rois[:, 2]))
        levels = torch.floor(torch.log2(scale / self.finest_scale + 1e-6))
        return levels.clamp(min=0, max=num_levels - 1).long()

    @staticmethod
    def roi_rescale(rois: torch.Tensor, scale_factor: float) -> torch.Tensor:
        """Scale each RoI's width/height by ``scale_factor`` about its centre."""
        cx = (rois[:, 1] + rois[:, 3]) * 0.5
        cy = (rois[:, 2] + rois[:, 4]) * 0.5
        half_w = (rois[:, 3] - rois[:, 1]) * scale_factor * 0.5
        half_h = (rois[:, 4] - rois[:, 2]) * scale_factor * 0.5
        return torch.stack([rois[:, 0], cx - half_w, cy - half_h, cx + half_w, cy + half_h], dim=-1)

    def forward(self, feats: tuple[torch.Tensor, ...], rois: torch.Tensor,
                roi_scale_factor: float | None = None) -> torch.Tensor:
        out_h, out_w = self.roi_layers[0].output_size
        num_levels = len(feats)
        if num_levels == 1:
            return self.roi_layers[0](feats[0], rois)
        roi_feats = feats[0].new_zeros(rois.size(0), self.out_channels, out_h, out_w)
        target_levels = self.map_roi_levels(rois, num_levels)
        if roi_scale_factor is not None:
            rois = self.roi_rescale(rois, roi_scale_factor)
        for level in range(num_levels):
            inds = torch.nonzero(target_levels == level, as_tuple=False).squeeze(1)
            if inds.numel() > 0:
                roi_feats[inds] = self.roi_layers[level](feats[level], rois[inds]).to(roi_feats.dtype)
            else:
                # keep every level in the autograd graph (DDP expects all inputs to receive gradients)
                roi_feats = roi_feats + feats[level].sum() * 0.0
        return roi_feats
