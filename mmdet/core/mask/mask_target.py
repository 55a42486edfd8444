"""Mask targets of positive RoIs (mmdetection 2.x ``mask_target``)."""
from __future__ import annotations

import numpy as np
import torch
from torch.nn.modules.utils import _pair

__all__ = ["mask_target", "mask_target_single"]


def mask_target_single(pos_proposals: torch.Tensor, pos_assigned_gt_inds: torch.Tensor, gt_masks, cfg
                       ) -> torch.Tensor:
    """Targets of one image.

    Args:
        pos_proposals: ``(P, 4)`` positive proposal boxes (the sampled boxes, not the regressed ones).
        pos_assigned_gt_inds: ``(P,)`` index of each positive's gt.
        gt_masks: ``BitmapMasks`` / ``PolygonMasks`` of the image (canvas = padded image).
        cfg: needs ``mask_size``; ``soft_mask_target=True`` keeps the RoIAligned values unbinarised.

    Each box is clipped to the mask canvas, then the gt mask is RoIAligned (aligned, adaptive sampling) to
    ``mask_size`` and binarised at ``>= 0.5``. Returns ``(P, mask_h, mask_w)`` float32 on the proposals' device.
    """
    device = pos_proposals.device
    mask_size = _pair(cfg["mask_size"])
    binarize = not cfg.get("soft_mask_target", False)
    num_pos = pos_proposals.size(0)
    if num_pos == 0:
        return pos_proposals.new_zeros((0,) + mask_size)
    boxes = pos_proposals.detach().cpu().numpy()
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, gt_masks.width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, gt_masks.height)
    targets = gt_masks.crop_and_resize(boxes, mask_size, device=device, inds=pos_assigned_gt_inds.cpu().numpy(),
                                       binarize=binarize).to_ndarray()
    return torch.from_numpy(np.ascontiguousarray(targets)).float().to(device)


def mask_target(pos_proposals_list: list, pos_assigned_gt_inds_list: list, gt_masks_list: list, cfg
                ) -> torch.Tensor:
    """Concatenate :func:`mask_target_single` over the images: ``(sum P_i, mask_h, mask_w)``."""
    if not (len(pos_proposals_list) == len(pos_assigned_gt_inds_list) == len(gt_masks_list)):
        raise ValueError(f"mask_target: got {len(pos_proposals_list)} proposal lists, "
                         f"{len(pos_assigned_gt_inds_list)} index lists and {len(gt_masks_list)} gt mask sets")
    targets = [mask_target_single(p, i, m, cfg)
               for p, i, m in zip(pos_proposals_list, pos_assigned_gt_inds_list, gt_masks_list)]
    return torch.cat(targets) if targets else torch.zeros(0)
