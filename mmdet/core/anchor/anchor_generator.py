"""``AnchorGenerator`` (mmdetection 2.x): multi-level anchors centred on ``k * stride``."""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
from torch.nn.modules.utils import _pair

from mmdet.registry import ANCHOR_GENERATORS


@ANCHOR_GENERATORS.register_module()
class AnchorGenerator:
    """Standard anchor generator for 2-D anchor-based detectors.

    Per level the base anchors are ``[cx - w/2, cy - h/2, cx + w/2, cy + h/2]`` with
    ``w = base_size * scale / sqrt(ratio)``, ``h = base_size * scale * sqrt(ratio)`` (not rounded) and centre
    ``center_offset * base_size`` (0: anchors centred on ``(x * stride, y * stride)``). Order per location:
    ratio-major, scale-minor when ``scale_major``. Grid anchors are flattened as ``(y * W + x) * A + a``.

    Args:
        strides: per level stride, an int or ``(stride_w, stride_h)``.
        ratios: ``h / w`` ratios.
        scales: anchor scales (relative to ``base_size``); or give ``octave_base_scale`` and
            ``scales_per_octave`` instead.
        base_sizes: per level base size (default: the smaller stride).
        scale_major: order base anchors ratio-major (True) or scale-major.
        octave_base_scale, scales_per_octave: ``scales = octave_base_scale * 2 ** (i / scales_per_octave)``.
        centers: per level explicit ``(cx, cy)`` of the base anchors.
        center_offset: centre as a fraction of ``base_size`` in ``[0, 1]`` (with ``centers`` unset).
    """

    def __init__(self, strides: Sequence, ratios: Sequence[float], scales: Sequence[float] | None = None,
                 base_sizes: Sequence[int] | None = None, scale_major: bool = True,
                 octave_base_scale: float | None = None, scales_per_octave: int | None = None,
                 centers: Sequence | None = None, center_offset: float = 0.0):
        if center_offset != 0 and centers is not None:
            raise ValueError(f"AnchorGenerator: give either centers or center_offset, got center_offset="
                             f"{center_offset} and centers={centers}")
        if not 0 <= center_offset <= 1:
            raise ValueError(f"AnchorGenerator center_offset must be in [0, 1], got {center_offset}")
        if centers is not None and len(centers) != len(strides):
            raise ValueError(f"AnchorGenerator: {len(centers)} centers for {len(strides)} strides")
        self.strides = [_pair(s) for s in strides]
        self.base_sizes = [min(s) for s in self.strides] if base_sizes is None else list(base_sizes)
        if len(self.base_sizes) != len(self.strides):
            raise ValueError(f"AnchorGenerator: {len(self.base_sizes)} base_sizes for {len(self.strides)} strides")
        octave = octave_base_scale is not None and scales_per_octave is not None
        if octave == (scales is not None):
            raise ValueError("AnchorGenerator needs either scales or (octave_base_scale and scales_per_octave), "
                             "not both and not neither")
        if scales is None:
            scales = np.array([2 ** (i / scales_per_octave) for i in range(scales_per_octave)]) * octave_base_scale
        self.scales = torch.tensor(np.asarray(scales, dtype=np.float64), dtype=torch.float32)
        self.octave_base_scale = octave_base_scale
        self.scales_per_octave = scales_per_octave
        self.ratios = torch.tensor(np.asarray(ratios, dtype=np.float64), dtype=torch.float32)
        self.scale_major = scale_major
        self.centers = centers
        self.center_offset = center_offset
        self.base_anchors = self.gen_base_anchors()

    @property
    def num_base_anchors(self) -> list[int]:
        """Anchors per location, per level."""
        return self.num_base_priors

    @property
    def num_base_priors(self) -> list[int]:
        return [a.size(0) for a in self.base_anchors]

    @property
    def num_levels(self) -> int:
        return len(self.strides)

    def gen_base_anchors(self) -> list[torch.Tensor]:
        """Base anchors ``(A, 4)`` of every level."""
        return [self.gen_single_level_base_anchors(size, self.scales, self.ratios,
                                                   None if self.centers is None else self.centers[i])
                for i, size in enumerate(self.base_sizes)]

    def gen_single_level_base_anchors(self, base_size: float, scales: torch.Tensor, ratios: torch.Tensor,
                                      center: Sequence[float] | None = None) -> torch.Tensor:
        """Base anchors ``(len(ratios) * len(scales), 4)`` of one level."""
        w = h = base_size
        x_center, y_center = (self.center_offset * w, self.center_offset * h) if center is None else center
        h_ratios = torch.sqrt(ratios)
        w_ratios = 1 / h_ratios
        if self.scale_major:
            ws = (w * w_ratios[:, None] * scales[None, :]).view(-1)
            hs = (h * h_ratios[:, None] * scales[None, :]).view(-1)
        else:
            ws = (w * scales[:, None] * w_ratios[None, :]).view(-1)
            hs = (h * scales[:, None] * h_ratios[None, :]).view(-1)
        return torch.stack([x_center - 0.5 * ws, y_center - 0.5 * hs, x_center + 0.5 * ws, y_center + 0.5 * hs],
                           dim=-1)

    def grid_priors(self, featmap_sizes: Sequence[Sequence[int]], dtype=torch.float32,
                    device="cuda") -> list[torch.Tensor]:
        """Anchors of every level: ``[(H_l * W_l * A, 4)]`` for ``featmap_sizes = [(H_l, W_l)]``."""
        if self.num_levels != len(featmap_sizes):
            raise ValueError(f"AnchorGenerator has {self.num_levels} levels but got {len(featmap_sizes)} "
                             f"feature map sizes")
        return [self.single_level_grid_priors(featmap_sizes[i], i, dtype=dtype, device=device)
                for i in range(self.num_levels)]

    def single_level_grid_priors(self, featmap_size: Sequence[int], level_idx: int, dtype=torch.float32,
                                 device="cuda") -> torch.Tensor:
        """Anchors ``(H * W * A, 4)`` of one level, index ``(y * W + x) * A + a``."""
        base_anchors = self.base_anchors[level_idx].to(device=device, dtype=dtype)
        feat_h, feat_w = int(featmap_size[0]), int(featmap_size[1])
        stride_w, stride_h = self.strides[level_idx]
        shift_x = torch.arange(0, feat_w, device=device).to(dtype) * stride_w
        shift_y = torch.arange(0, feat_h, device=device).to(dtype) * stride_h
        shift_yy, shift_xx = torch.meshgrid(shift_y, shift_x, indexing="ij")
        shift_xx, shift_yy = shift_xx.reshape(-1), shift_yy.reshape(-1)
        shifts = torch.stack([shift_xx, shift_yy, shift_xx, shift_yy], dim=-1)
        return (base_anchors[None, :, :] + shifts[:, None, :]).view(-1, 4)

    def grid_anchors(self, featmap_sizes: Sequence[Sequence[int]], device="cuda") -> list[torch.Tensor]:
        """Older name of :meth:`grid_priors` (float32)."""
        return self.grid_priors(featmap_sizes, device=device)

    def sparse_priors(self, prior_idxs: torch.Tensor, featmap_size: Sequence[int], level_idx: int,
                      dtype=torch.float32, device="cuda") -> torch.Tensor:
        """Anchors ``(K, 4)`` at the flat indices ``prior_idxs`` of one level (same values as the grid)."""
        feat_w = int(featmap_size[1])
        num_base = self.num_base_priors[level_idx]
        base_id = prior_idxs % num_base
        x = (prior_idxs // num_base) % feat_w * self.strides[level_idx][0]
        y = (prior_idxs // feat_w) // num_base % int(featmap_size[0]) * self.strides[level_idx][1]
        shifts = torch.stack([x, y, x, y], 1).to(dtype).to(device)
        return self.base_anchors[level_idx][base_id, :].to(device=device, dtype=dtype) + shifts

    def valid_flags(self, featmap_sizes: Sequence[Sequence[int]], pad_shape: Sequence[int],
                    device="cuda") -> list[torch.Tensor]:
        """Per level ``(H_l * W_l * A,)`` bool: False for cells beyond ``ceil(pad / stride)``."""
        if self.num_levels != len(featmap_sizes):
            raise ValueError(f"AnchorGenerator has {self.num_levels} levels but got {len(featmap_sizes)} "
                             f"feature map sizes")
        h, w = pad_shape[:2]
        flags = []
        for i in range(self.num_levels):
            stride_w, stride_h = self.strides[i]
            feat_h, feat_w = int(featmap_sizes[i][0]), int(featmap_sizes[i][1])
            valid_h = min(int(math.ceil(h / stride_h)), feat_h)
            valid_w = min(int(math.ceil(w / stride_w)), feat_w)
            flags.append(self.single_level_valid_flags((feat_h, feat_w), (valid_h, valid_w),
                                                       self.num_base_priors[i], device=device))
        return flags

    def single_level_valid_flags(self, featmap_size: Sequence[int], valid_size: Sequence[int],
                                 num_base_anchors: int, device="cuda") -> torch.Tensor:
        """``(H * W * A,)`` bool, True where ``y < valid_h`` and ``x < valid_w``."""
        feat_h, feat_w = featmap_size
        valid_h, valid_w = valid_size
        valid_y = torch.arange(feat_h, device=device) < valid_h
        valid_x = torch.arange(feat_w, device=device) < valid_w
        valid = valid_y[:, None] & valid_x[None, :]
        return valid.reshape(-1, 1).expand(-1, num_base_anchors).reshape(-1)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}(strides={self.strides}, ratios={self.ratios.tolist()}, "
                f"scales={self.scales.tolist()}, base_sizes={self.base_sizes}, scale_major={self.scale_major}, "
                f"centers={self.centers}, center_offset={self.center_offset})")
