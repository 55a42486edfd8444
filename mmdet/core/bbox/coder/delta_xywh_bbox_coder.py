"""``DeltaXYWHBBoxCoder`` (mmdetection 2.x): normalised (dx, dy, dw, dh) deltas between boxes."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from mmdet.registry import BBOX_CODERS

from .base_bbox_coder import BaseBBoxCoder


def bbox2delta(proposals: torch.Tensor, gt: torch.Tensor, means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
               stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0)) -> torch.Tensor:
    """Encode ``gt`` relative to ``proposals``.

    ``dx = (gx - px) / pw``, ``dw = log(gw / pw)`` (same for y/h), then ``(d - means) / stds``.

    Args:
        proposals, gt: ``(..., 4)`` boxes of the same shape.

    Returns:
        ``(..., 4)`` float32 deltas.
    """
    if proposals.size() != gt.size():
        raise ValueError(f"bbox2delta needs boxes of one shape, got {tuple(proposals.shape)} and {tuple(gt.shape)}")
    proposals, gt = proposals.float(), gt.float()
    pxy = (proposals[..., :2] + proposals[..., 2:]) * 0.5
    pwh = proposals[..., 2:] - proposals[..., :2]
    gxy = (gt[..., :2] + gt[..., 2:]) * 0.5
    gwh = gt[..., 2:] - gt[..., :2]
    dxy = (gxy - pxy) / pwh
    dwh = torch.log(gwh / pwh)
    deltas = torch.cat([dxy, dwh], dim=-1)
    return (deltas - deltas.new_tensor(means)) / deltas.new_tensor(stds)


def delta2bbox(rois: torch.Tensor, deltas: torch.Tensor, means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
               stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0), max_shape: Sequence[int] | None = None,
               wh_ratio_clip: float = 16 / 1000, clip_border: bool = True, add_ctr_clamp: bool = False,
               ctr_clamp: float = 32) -> torch.Tensor:
    """Apply deltas to rois; class-specific deltas (``4k`` columns) are decoded per class with the same roi.

    Args:
        rois: ``(N, 4)`` boxes.
        deltas: ``(N, 4k)`` normalised deltas.
        means, stds: de-normalisation ``d = delta * stds + means``.
        max_shape: ``(H, W)`` of the image; with ``clip_border`` x is clamped to ``[0, W]``, y to ``[0, H]``.
        wh_ratio_clip: ``dw``/``dh`` are clamped to ``±|log(wh_ratio_clip)|``.
        add_ctr_clamp, ctr_clamp: clamp the centre shift (in pixels) to ``±ctr_clamp``; then ``dw``/``dh``
            are clamped from above only.

    Returns:
        ``(N, 4k)`` boxes.
    """
    num_bboxes, num_classes = deltas.size(0), deltas.size(1) // 4
    if num_bboxes == 0:
        return deltas
    deltas = deltas.reshape(-1, 4)
    denorm = deltas * deltas.new_tensor(stds).view(1, -1) + deltas.new_tensor(means).view(1, -1)
    dxy, dwh = denorm[:, :2], denorm[:, 2:]
    rois_rep = rois.repeat(1, num_classes).reshape(-1, 4)
    pxy = (rois_rep[:, :2] + rois_rep[:, 2:]) * 0.5
    pwh = rois_rep[:, 2:] - rois_rep[:, :2]
    dxy_wh = pwh * dxy
    max_ratio = abs(math.log(wh_ratio_clip))
    if add_ctr_clamp:
        dxy_wh = torch.clamp(dxy_wh, max=ctr_clamp, min=-ctr_clamp)
        dwh = torch.clamp(dwh, max=max_ratio)
    else:
        dwh = dwh.clamp(min=-max_ratio, max=max_ratio)
    gxy = pxy + dxy_wh
    gwh = pwh * dwh.exp()
    bboxes = torch.cat([gxy - gwh * 0.5, gxy + gwh * 0.5], dim=-1)
    if clip_border and max_shape is not None:
        bboxes[:, 0::2].clamp_(min=0, max=float(max_shape[1]))
        bboxes[:, 1::2].clamp_(min=0, max=float(max_shape[0]))
    return bboxes.reshape(num_bboxes, -1)


@BBOX_CODERS.register_module()
class DeltaXYWHBBoxCoder(BaseBBoxCoder):
    """Encode boxes as normalised centre/size deltas (R-CNN parameterisation).

    Args:
        target_means, target_stds: normalisation of the deltas.
        clip_border: clip decoded boxes to ``max_shape``.
        add_ctr_clamp, ctr_clamp: clamp the decoded centre shift (off in every mmdet 2.x config here).
    """

    def __init__(self, target_means: Sequence[float] = (0.0, 0.0, 0.0, 0.0),
                 target_stds: Sequence[float] = (1.0, 1.0, 1.0, 1.0), clip_border: bool = True,
                 add_ctr_clamp: bool = False, ctr_clamp: float = 32):
        super().__init__()
        self.means = tuple(float(m) for m in target_means)
        self.stds = tuple(float(s) for s in target_stds)
        self.clip_border = clip_border
        self.add_ctr_clamp = add_ctr_clamp
        self.ctr_clamp = ctr_clamp

    def encode(self, bboxes: torch.Tensor, gt_bboxes: torch.Tensor) -> torch.Tensor:
        """``bboxes``, ``gt_bboxes``: ``(N, 4)`` -> ``(N, 4)`` normalised deltas."""
        if bboxes.size(0) != gt_bboxes.size(0) or bboxes.size(-1) != 4 or gt_bboxes.size(-1) != 4:
            raise ValueError(f"DeltaXYWHBBoxCoder.encode needs two (N, 4) tensors, got {tuple(bboxes.shape)} "
                             f"and {tuple(gt_bboxes.shape)}")
        return bbox2delta(bboxes, gt_bboxes, self.means, self.stds)

    def decode(self, bboxes: torch.Tensor, pred_bboxes: torch.Tensor, max_shape: Sequence[int] | None = None,
               wh_ratio_clip: float = 16 / 1000) -> torch.Tensor:
        """Decode deltas.

        Args:
            bboxes: ``(N, 4)`` or batched ``(B, N, 4)`` base boxes.
            pred_bboxes: ``(N, 4k)`` or ``(B, N, 4k)`` deltas (``k`` classes share the base box).
            max_shape: ``(H, W[, C])`` to clip to (one shape for the whole batch).
            wh_ratio_clip: see :func:`delta2bbox`.

        Returns:
            boxes with ``pred_bboxes``' shape.
        """
        if pred_bboxes.size(0) != bboxes.size(0):
            raise ValueError(f"DeltaXYWHBBoxCoder.decode: {bboxes.size(0)} boxes but {pred_bboxes.size(0)} deltas")
        args = (self.means, self.stds, max_shape, wh_ratio_clip, self.clip_border, self.add_ctr_clamp,
                self.ctr_clamp)
        if pred_bboxes.ndim == 3:
            if pred_bboxes.size(1) != bboxes.size(1):
                raise ValueError(f"DeltaXYWHBBoxCoder.decode: batched boxes {tuple(bboxes.shape)} do not match "
                                 f"deltas {tuple(pred_bboxes.shape)}")
            flat = delta2bbox(bboxes.reshape(-1, 4), pred_bboxes.reshape(-1, pred_bboxes.size(-1)), *args)
            return flat.reshape(pred_bboxes.shape)
        return delta2bbox(bboxes, pred_bboxes, *args)
