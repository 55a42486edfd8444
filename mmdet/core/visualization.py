"""Drawing detections and ground truth on images with OpenCV (mmdetection 2.x ``mmdet.core.visualization`` API).

Colours follow mmdetection 2.x: a colour is an RGB tuple, a colour name ('green', 'red', ...), a list of RGB
tuples (one per class: a palette), ``'random'`` or None (a fixed random palette seeded with 42). Images are BGR
uint8 arrays ``(H, W, 3)`` as read by ``cv2.imread``; drawing happens on a copy.
"""
from __future__ import annotations

import os
import warnings
from typing import Sequence

import cv2
import numpy as np
from pycocotools import mask as mask_util

__all__ = ["color_val_rgb", "get_palette", "parse_det_result", "imshow_det_bboxes", "imshow_gt_det_bboxes"]

#: mmcv's named colours, RGB
_NAMED_COLORS = {"red": (255, 0, 0), "green": (0, 255, 0), "blue": (0, 0, 255), "cyan": (0, 255, 255),
                 "yellow": (255, 255, 0), "magenta": (255, 0, 255), "white": (255, 255, 255), "black": (0, 0, 0)}
#: opacity of a drawn mask (new = old * (1 - alpha) + colour * alpha)
MASK_ALPHA = 0.5
_FONT = cv2.FONT_HERSHEY_SIMPLEX


def color_val_rgb(color) -> tuple[int, int, int]:
    """A colour name or a 3-tuple of 0..255 -> RGB int tuple."""
    if isinstance(color, str):
        if color not in _NAMED_COLORS:
            raise ValueError(f"unknown colour name '{color}'; use one of {sorted(_NAMED_COLORS)} or an RGB tuple")
        return _NAMED_COLORS[color]
    rgb = tuple(int(c) for c in color)
    if len(rgb) != 3 or not all(0 <= c <= 255 for c in rgb):
        raise ValueError(f"a colour must be 3 ints in 0..255 (RGB), got {color!r}")
    return rgb


def get_palette(palette, num_classes: int) -> list[tuple[int, int, int]]:
    """One RGB colour per class.

    Args:
        palette: None or 'random' (fixed seed 42, the global numpy RNG untouched), a colour name or RGB tuple
            (the same colour for every class), or a list of RGB tuples (one per class, at least ``num_classes``).
        num_classes: number of colours wanted.
    """
    if palette is None or (isinstance(palette, str) and palette == "random"):
        rng = np.random.RandomState(42)
        return [tuple(int(v) for v in c) for c in rng.randint(0, 256, size=(max(num_classes, 1), 3))]
    if isinstance(palette, list):
        if len(palette) < num_classes:
            raise ValueError(f"palette has {len(palette)} colours but labels go up to class {num_classes - 1}")
        return [color_val_rgb(c) for c in palette]
    return [color_val_rgb(palette)] * max(num_classes, 1)


def _mask_array(mask, height: int, width: int) -> np.ndarray:
    """A bool ``(H, W)`` array from a bool/uint8 array or a COCO RLE dict."""
    if isinstance(mask, dict):
        mask = mask_util.decode(mask)
    mask = np.asarray(mask).astype(bool)
    if mask.shape != (height, width):
        raise ValueError(f"mask of shape {mask.shape} does not match the image ({height}, {width})")
    return mask


def parse_det_result(result) -> tuple[np.ndarray, np.ndarray, list | None]:
    """A detector's per-image result -> flat arrays for :func:`imshow_det_bboxes`.

    Args:
        result: ``bbox_results`` (list over classes of ``(n_c, 5)`` arrays) or ``(bbox_results, segm_results)``
            (``segm_results``: list over classes of lists of ``(H, W)`` masks or RLE dicts; a
            ``(segms, scores)`` tuple as some heads return is accepted too).
    Returns:
        bboxes ``(n, 5)`` float32, labels ``(n,)`` int64, segms: list of n masks (or None when there are none).
    """
    if isinstance(result, tuple):
        bbox_result, segm_result = result
        if isinstance(segm_result, tuple):
            segm_result = segm_result[0]
    else:
        bbox_result, segm_result = result, None
    per_class = [np.asarray(b, dtype=np.float32).reshape(-1, 5) for b in bbox_result]
    bboxes = np.concatenate(per_class) if per_class else np.zeros((0, 5), np.float32)
    labels = (np.concatenate([np.full(len(b), i, dtype=np.int64) for i, b in enumerate(per_class)])
              if per_class else np.zeros(0, np.int64))
    segms = None
    if segm_result is not None:
        segms = [m for masks in segm_result for m in masks]
        if len(segms) != len(bboxes):
            raise ValueError(f"result has {len(bboxes)} boxes but {len(segms)} masks")
    return bboxes, labels, segms


def _read_image(img, caller: str):
    """``img`` itself, or the BGR image read from it when it is a path."""
    if not isinstance(img, (str, os.PathLike)):
        return img
    path = str(img)
    loaded = cv2.imread(path)
    if loaded is None:
        raise FileNotFoundError(f"{caller}: cannot read image {path}")
    return loaded


def _bgr(rgb: Sequence[int]) -> tuple[int, int, int]:
    return int(rgb[2]), int(rgb[1]), int(rgb[0])


def _draw_label(img: np.ndarray, text: str, x1: int, y1: int, font_size: int, text_color_bgr) -> None:
    """``text`` in a dark filled box whose top-left corner is ``(x1, y1)`` (inside the detection box)."""
    scale = cv2.getFontScaleFromHeight(_FONT, max(int(font_size), 1), 1)
    (tw, th), baseline = cv2.getTextSize(text, _FONT, scale, 1)
    h, w = img.shape[:2]
    x1, y1 = min(max(x1, 0), w - 1), min(max(y1, 0), h - 1)
    x2, y2 = min(x1 + tw + 2, w - 1), min(y1 + th + baseline + 2, h - 1)
    region = img[y1:y2 + 1, x1:x2 + 1]
    region[:] = (region.astype(np.float32) * 0.2).astype(np.uint8)
    cv2.putText(img, text, (x1 + 1, y1 + th + 1), _FONT, scale, text_color_bgr, 1, cv2.LINE_AA)


def imshow_det_bboxes(img, bboxes=None, labels=None, segms=None, class_names: Sequence[str] | None = None,
                      score_thr: float = 0, bbox_color="green", text_color="green", mask_color=None,
                      thickness: int = 2, font_size: int = 13, win_name: str = "", show: bool = True,
                      wait_time: float = 0, out_file: str | None = None) -> np.ndarray:
    """Draw semi-transparent per-class masks, boxes and ``class|score`` labels.

    Args:
        img: BGR uint8 ``(H, W, 3)`` array or an image path (not modified).
        bboxes: ``(n, 4)`` or ``(n, 5)`` (last column: score) in image pixels; None = no boxes.
        labels: ``(n,)`` class indices.
        segms: ``(n, H, W)`` bool array, or a list of n ``(H, W)`` masks / COCO RLE dicts, or None.
        class_names: names indexed by label (labels shown as numbers when None).
        score_thr: with 5-column boxes, instances with score <= ``score_thr`` are skipped (when > 0).
        bbox_color / text_color / mask_color: a colour, a per-class palette, or None (random per-class
            palette); see :func:`get_palette`. Masks use ``MASK_ALPHA`` opacity.
        thickness: box line width in pixels; font_size: label height in pixels.
        show: mmdetection's display flag; this build is headless, so it only warns (use ``out_file``).
        out_file: write the drawing there (parent directories created).
    Returns:
        The drawn BGR uint8 image ``(H, W, 3)``.
    """
    img = np.ascontiguousarray(np.array(_read_image(img, "imshow_det_bboxes"), dtype=np.uint8, copy=True))
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f"img must be (H, W, 3) BGR, got shape {img.shape}")
    height, width = img.shape[:2]
    bboxes = np.zeros((0, 4), np.float32) if bboxes is None else np.asarray(bboxes, dtype=np.float32)
    if bboxes.size == 0:
        bboxes = bboxes.reshape(0, 4)
    labels = np.zeros(0, np.int64) if labels is None else np.asarray(labels, dtype=np.int64).reshape(-1)
    num = len(labels)
    if bboxes.ndim != 2 or bboxes.shape[1] not in (4, 5) or (len(bboxes) and len(bboxes) != num):
        raise ValueError(f"bboxes must be (n, 4|5) with n = len(labels) = {num}, got {bboxes.shape}")
    if segms is not None and len(segms) != num:
        raise ValueError(f"segms has {len(segms)} masks but there are {num} labels")

    keep = np.ones(num, dtype=bool)
    if score_thr > 0 and bboxes.shape[1] == 5 and len(bboxes):
        keep = bboxes[:, 4] > score_thr
    num_colors = int(labels.max()) + 1 if num else 1
    if class_names is not None:
        num_colors = max(num_colors, len(class_names))
    bbox_palette = get_palette(bbox_color, num_colors)
    text_palette = get_palette(text_color, num_colors)
    mask_palette = get_palette(mask_color, num_colors)

    if segms is not None:
        for idx in np.flatnonzero(keep):
            mask = _mask_array(segms[idx], height, width)
            color = np.asarray(_bgr(mask_palette[labels[idx]]), dtype=np.float32)
            img[mask] = (img[mask].astype(np.float32) * (1 - MASK_ALPHA) + color * MASK_ALPHA).astype(np.uint8)
    for idx in np.flatnonzero(keep) if len(bboxes) else ():
        label = int(labels[idx])
        x1, y1, x2, y2 = (int(round(float(v))) for v in bboxes[idx, :4])
        cv2.rectangle(img, (x1, y1), (x2, y2), _bgr(bbox_palette[label]), thickness)
        name = class_names[label] if class_names is not None else f"class {label}"
        text = f"{name}|{bboxes[idx, 4]:.02f}" if bboxes.shape[1] == 5 else name
        _draw_label(img, text, x1 + thickness, y1 + thickness, font_size, _bgr(text_palette[label]))

    if show:
        warnings.warn(f"imshow_det_bboxes(show=True{', ' + win_name if win_name else ''}): no display in this "
                      f"build (opencv headless); pass out_file to save the drawing")
    if out_file is not None:
        os.makedirs(os.path.dirname(os.path.abspath(out_file)), exist_ok=True)
        if not cv2.imwrite(str(out_file), img):
            raise OSError(f"imshow_det_bboxes: could not write {out_file} (check the extension, e.g. .png/.jpg)")
    return img


def imshow_gt_det_bboxes(img, annotation: dict, result, class_names: Sequence[str] | None = None,
                         score_thr: float = 0, gt_bbox_color=(61, 102, 255), gt_text_color=(200, 200, 200),
                         gt_mask_color=(61, 102, 255), det_bbox_color=(241, 101, 72),
                         det_text_color=(200, 200, 200), det_mask_color=(241, 101, 72), thickness: int = 2,
                         font_size: int = 13, win_name: str = "", show: bool = True, wait_time: float = 0,
                         out_file: str | None = None, overlay_gt_pred: bool = True) -> np.ndarray:
    """Ground truth and detections of one image.

    Args:
        annotation: ``gt_bboxes`` ``(g, 4)``, ``gt_labels`` ``(g,)``, optional ``gt_masks`` (``(g, H, W)`` array
            or a mask structure with ``to_ndarray()``).
        result: the detector's result for the image (see :func:`parse_det_result`).
        overlay_gt_pred: True draws both on one image; False stacks the ground truth above the detections.
    Returns: the drawn BGR image (``(2H, W, 3)`` when not overlaid).
    """
    img = _read_image(img, "imshow_gt_det_bboxes")
    gt_masks = annotation.get("gt_masks")
    if gt_masks is not None and hasattr(gt_masks, "to_ndarray"):
        gt_masks = gt_masks.to_ndarray()
    gt_img = imshow_det_bboxes(img, annotation["gt_bboxes"], annotation["gt_labels"], gt_masks,
                               class_names=class_names, bbox_color=gt_bbox_color, text_color=gt_text_color,
                               mask_color=gt_mask_color, thickness=thickness, font_size=font_size, show=False)
    bboxes, labels, segms = parse_det_result(result)
    det_img = imshow_det_bboxes(gt_img if overlay_gt_pred else img, bboxes, labels, segms,
                                class_names=class_names, score_thr=score_thr, bbox_color=det_bbox_color,
                                text_color=det_text_color, mask_color=det_mask_color, thickness=thickness,
                                font_size=font_size, show=False)
    drawn = det_img if overlay_gt_pred else np.concatenate([gt_img, det_img], axis=0)
    return imshow_det_bboxes(drawn, show=show, win_name=win_name, wait_time=wait_time, out_file=out_file)
