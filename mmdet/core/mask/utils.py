"""Mask helpers used around inference and evaluation (mmdetection 2.x semantics)."""
from __future__ import annotations

import numpy as np
import pycocotools.mask as mask_utils
import torch

from .structures import BitmapMasks, PolygonMasks


def encode_mask_results(mask_results):
    """RLE-encode per-class binary masks, as ``single_gpu_test`` does before collecting results.

    Args:
        mask_results: ``segm_results`` of one image, a list over classes of lists of ``(H, W)`` bool/uint8
            masks; or a tuple ``(segm_results, mask_scores)`` (then the scores are passed through).

    Returns:
        The same nesting with each mask replaced by a pycocotools RLE dict ``{'size': [H, W], 'counts': bytes}``
        (and the scores, for a tuple input). All masks of a class are encoded in one pycocotools call.
    """
    if isinstance(mask_results, tuple):
        cls_segms, cls_mask_scores = mask_results
    else:
        cls_segms, cls_mask_scores = mask_results, None
    encoded = []
    for segms in cls_segms:
        if len(segms) == 0:
            encoded.append([])
            continue
        stacked = np.asfortranarray(np.stack([np.asarray(m, dtype=np.uint8) for m in segms], axis=-1))
        encoded.append(mask_utils.encode(stacked))
    return (encoded, cls_mask_scores) if cls_mask_scores is not None else encoded


def mask2ndarray(mask) -> np.ndarray:
    """``BitmapMasks`` / ``PolygonMasks`` / tensor / array -> ``(n, H, W)`` numpy array."""
    if isinstance(mask, (BitmapMasks, PolygonMasks)):
        return mask.to_ndarray()
    if isinstance(mask, torch.Tensor):
        return mask.detach().cpu().numpy()
    if isinstance(mask, np.ndarray):
        return mask
    raise TypeError(f"mask2ndarray: unsupported mask type {type(mask).__name__}")


def split_combined_polys(polys, poly_lens, polys_per_mask):
    """Split concatenated polygon coordinates back into per-mask lists of polygons.

    Args:
        polys: per image, a 1-D array of all polygon coordinates concatenated.
        poly_lens: per image, the length of each polygon in ``polys``.
        polys_per_mask: per image, the number of polygons of each mask.

    Returns:
        Per image, a list of masks, each a list of 1-D polygon arrays.
    """
    out = []
    for flat, lens, per_mask in zip(polys, poly_lens, polys_per_mask):
        lens = np.asarray(lens).astype(np.int64).reshape(-1)
        per_mask = np.asarray(per_mask).astype(np.int64).reshape(-1)
        if lens.sum() != len(flat) or per_mask.sum() != len(lens):
            raise ValueError(f"split_combined_polys: lengths do not add up ({int(lens.sum())} coordinates for "
                             f"{len(flat)}, {int(per_mask.sum())} polygons for {len(lens)})")
        polygons = np.split(np.asarray(flat), np.cumsum(lens)[:-1])
        bounds = np.concatenate([[0], np.cumsum(per_mask)])
        out.append([polygons[bounds[i]:bounds[i + 1]] for i in range(len(per_mask))])
    return out
