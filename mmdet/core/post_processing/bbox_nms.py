"""NMS of mmdetection 2.x: ``batched_nms`` (mmcv.ops semantics) and ``multiclass_nms``.

The kernel is ``torchvision.ops.nms``: boxes sorted by score, a box is suppressed when its IoU with a kept
box is ``> iou_threshold`` (strict), widths without +1, output sorted by score descending.
"""
from __future__ import annotations

import torch
from torchvision.ops import nms as tv_nms


def batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, nms_cfg: dict | None,
                class_agnostic: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """NMS independently per group id (mmcv ``batched_nms``).

    Groups are separated by offsetting every box by ``id * (max coordinate + 1)``, so boxes of different groups
    never overlap. On GPU, below ``split_thr`` (default 10000) boxes one NMS runs over all of them (mmcv); otherwise
    NMS runs per id on the offset boxes. Both give the same kept set (the IoUs inside a group are computed from the
    same offset coordinates); on CPU the per-id loop is 2.5-4.6x faster (measured: 5 RPN levels x 2000 boxes
    138 -> 53 ms, 10 classes x 1000 boxes 119 -> 26 ms).

    Args:
        boxes: ``(N, 4)``.
        scores: ``(N,)``.
        idxs: ``(N,)`` group id of each box (class or level).
        nms_cfg: ``dict(type='nms', iou_threshold=..., [split_thr], [class_agnostic])``; None means no NMS
            (boxes only sorted by score).
        class_agnostic: ignore ``idxs``.

    Returns:
        ``dets`` ``(K, 5)`` = ``[x1, y1, x2, y2, score]`` sorted by score descending, and ``keep`` ``(K,)``
        indices into the inputs.
    """
    if nms_cfg is None:
        scores, inds = scores.sort(descending=True)
        return torch.cat([boxes[inds], scores[:, None]], -1), inds
    cfg = dict(nms_cfg)
    class_agnostic = cfg.pop("class_agnostic", class_agnostic)
    nms_type = cfg.pop("type", "nms")
    if nms_type != "nms":
        raise ValueError(f"nms type {nms_type!r} is not supported; use dict(type='nms', iou_threshold=...)")
    if "iou_threshold" not in cfg:
        raise KeyError(f"nms config {nms_cfg!r} needs 'iou_threshold', e.g. dict(type='nms', iou_threshold=0.5)")
    iou_threshold = float(cfg.pop("iou_threshold"))
    split_thr = cfg.pop("split_thr", 10000)
    cfg.pop("offset", None)  # mmcv's offset=0 is the only convention here (no +1)
    if cfg:
        raise KeyError(f"unknown nms config keys {sorted(cfg)} in {nms_cfg!r}")

    if class_agnostic:
        boxes_for_nms = boxes
    elif boxes.numel() == 0:
        boxes_for_nms = boxes
    else:
        max_coordinate = boxes.max()
        offsets = idxs.to(boxes) * (max_coordinate + torch.tensor(1).to(boxes))
        boxes_for_nms = boxes + offsets[:, None]

    if boxes_for_nms.shape[0] < split_thr and (boxes.device.type != "cpu" or class_agnostic):
        keep = tv_nms(boxes_for_nms, scores, iou_threshold)
        boxes, scores = boxes[keep], scores[keep]
    else:
        total_mask = torch.zeros_like(scores, dtype=torch.bool)
        for group_id in torch.unique(idxs):
            members = (idxs == group_id).nonzero(as_tuple=False).view(-1)
            total_mask[members[tv_nms(boxes_for_nms[members], scores[members], iou_threshold)]] = True
        keep = total_mask.nonzero(as_tuple=False).view(-1)
        scores, order = scores[keep].sort(descending=True)
        keep = keep[order]
        boxes = boxes[keep]
    return torch.cat([boxes, scores[:, None]], -1), keep


def multiclass_nms(multi_bboxes: torch.Tensor, multi_scores: torch.Tensor, score_thr: float, nms_cfg: dict,
                   max_num: int = -1, score_factors: torch.Tensor | None = None, return_inds: bool = False):
    """Per-class NMS of a detection head's output (mmdetection 2.x).

    Every (roi, class) pair with ``score > score_thr`` (strict; background = last column, dropped) keeps that
    class's box; ``batched_nms`` with the class as group; the top ``max_num`` (``> 0``) by score.

    Args:
        multi_bboxes: ``(N, 4)`` class-agnostic or ``(N, 4 * C)`` class-specific boxes.
        multi_scores: ``(N, C + 1)`` scores, background last.
        score_thr: minimum score (exclusive).
        nms_cfg: e.g. ``dict(type='nms', iou_threshold=0.5)``.
        max_num: keep at most this many (``-1``: all).
        score_factors: ``(N,)`` multiplied into the scores after thresholding.
        return_inds: also return the indices into the flattened ``(N * C)`` candidates.

    Returns:
        ``dets`` ``(K, 5)``, ``labels`` ``(K,)`` in ``0..C-1`` [, ``inds`` ``(K,)``].
    """
    num_classes = multi_scores.size(1) - 1
    num_rois = multi_scores.size(0)
    if multi_bboxes.shape[1] > 4:
        bboxes = multi_bboxes.view(num_rois, -1, 4)
    else:
        bboxes = multi_bboxes[:, None].expand(num_rois, num_classes, 4)
    scores = multi_scores[:, :-1]
    labels = torch.arange(num_classes, dtype=torch.long, device=scores.device).view(1, -1).expand_as(scores)
    bboxes, scores, labels = bboxes.reshape(-1, 4), scores.reshape(-1), labels.reshape(-1)

    valid_mask = scores > score_thr
    if score_factors is not None:
        scores = scores * score_factors.view(-1, 1).expand(num_rois, num_classes).reshape(-1)
    inds = valid_mask.nonzero(as_tuple=False).squeeze(1)
    bboxes, scores, labels = bboxes[inds], scores[inds], labels[inds]

    if bboxes.numel() == 0:
        dets = torch.cat([bboxes, scores[:, None]], -1)
        return (dets, labels, inds) if return_inds else (dets, labels)

    dets, keep = batched_nms(bboxes, scores, labels, nms_cfg)
    if max_num > 0:
        dets, keep = dets[:max_num], keep[:max_num]
    return (dets, labels[keep], inds[keep]) if return_inds else (dets, labels[keep])
