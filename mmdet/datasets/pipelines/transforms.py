"""Geometric and photometric transforms with mmdetection 2.x semantics (2.28 defaults).

Each transform is a callable on the ``results`` dict. Images are ``(H, W, C)`` arrays; boxes are ``(n, 4)``
float32 ``(x1, y1, x2, y2)`` pixel arrays listed in ``results['bbox_fields']``; masks are
``BitmapMasks``/``PolygonMasks`` listed in ``results['mask_fields']``; semantic maps in ``seg_fields``.
Random draws use numpy's global generator, as mmdet does (the dataloader seeds it per worker).
"""
from __future__ import annotations

import numpy as np

from mmdet.core.bbox.transforms import FLIP_DIRECTIONS, bbox_flip
from mmdet.registry import PIPELINES

from .image_ops import imflip, imnormalize, impad, impad_to_multiple, imrescale, imresize


def as_scale_list(img_scale) -> list[tuple[int, int]] | None:
    """One scale or a list of scales -> list of ``(a, b)`` tuples.

    A list of two numbers (a tuple that went through JSON/YAML) counts as one scale.
    """
    if img_scale is None:
        return None
    is_single = not isinstance(img_scale, list) or (
        len(img_scale) == 2 and all(isinstance(v, (int, float)) for v in img_scale))
    scales = [img_scale] if is_single else img_scale
    for s in scales:
        if not (isinstance(s, (tuple, list)) and len(s) == 2):
            raise TypeError(f"img_scale entries must be (long, short) or (w, h) pairs, got {s!r}")
    return [tuple(s) for s in scales]


def clip_bboxes_(bboxes: np.ndarray, img_shape: tuple) -> np.ndarray:
    """Clip ``(n, 4)`` boxes in place to an image of ``img_shape = (h, w[, c])``; returns them."""
    bboxes[:, 0::2] = np.clip(bboxes[:, 0::2], 0, img_shape[1])
    bboxes[:, 1::2] = np.clip(bboxes[:, 1::2], 0, img_shape[0])
    return bboxes


@PIPELINES.register_module()
class Resize:
    """Resize images, boxes, masks and semantic maps (mmdet 2.x ``Resize``).

    Args:
        img_scale: a scale ``(w, h)`` / ``(long, short)`` or a list of them; None when the scale comes from
            ``results['scale']`` (``MultiScaleFlipAug``) or ``results['scale_factor']``.
        multiscale_mode: with several scales, 'value' picks one uniformly; 'range' samples the long and short
            edges uniformly (inclusive integers) between the given scales.
        ratio_range: ``(lo, hi)``: scale = ``img_scale[0] * r`` with ``r ~ U[lo, hi)`` (``int`` per side);
            needs a single ``img_scale``.
        keep_ratio: rescale so the image fits the scale keeping its aspect ratio (mmcv ``imrescale``), else
            resize exactly to ``(w, h)``.
        bbox_clip_border: clip boxes to the new image.
        backend: only 'cv2'.
        interpolation: image interpolation ('bilinear' default); masks and maps always use 'nearest'.
        override: drop a ``scale``/``scale_factor`` set by a previous Resize and draw a new scale (used
            after a crop in AutoAugment policies).

    Sets ``img_shape``, ``pad_shape``, ``scale``, ``scale_idx``, ``scale_factor`` (float32 ``[w, h, w, h]``),
    ``keep_ratio``.
    """

    def __init__(self, img_scale=None, multiscale_mode: str = "range", ratio_range=None, keep_ratio: bool = True,
                 bbox_clip_border: bool = True, backend: str = "cv2", interpolation: str = "bilinear",
                 override: bool = False):
        self.img_scale = as_scale_list(img_scale)
        if ratio_range is not None:
            if self.img_scale is None or len(self.img_scale) != 1:
                raise ValueError("Resize: ratio_range needs exactly one img_scale")
        elif multiscale_mode not in ("value", "range"):
            raise ValueError(f"Resize: multiscale_mode must be 'value' or 'range', got {multiscale_mode!r}")
        if backend != "cv2":
            raise ValueError(f"Resize: backend {backend!r} is not supported; use backend='cv2'")
        self.multiscale_mode = multiscale_mode
        self.ratio_range = ratio_range
        self.keep_ratio = keep_ratio
        self.bbox_clip_border = bbox_clip_border
        self.interpolation = interpolation
        self.override = override

    def _random_scale(self, results: dict) -> None:
        if self.img_scale is None:
            raise KeyError("Resize: no img_scale configured and no 'scale' in results "
                           "(set img_scale or put Resize inside MultiScaleFlipAug)")
        if self.ratio_range is not None:
            lo, hi = self.ratio_range
            ratio = np.random.random_sample() * (hi - lo) + lo
            base = self.img_scale[0]
            scale, idx = (int(base[0] * ratio), int(base[1] * ratio)), None
        elif len(self.img_scale) == 1:
            scale, idx = self.img_scale[0], 0
        elif self.multiscale_mode == "range":
            longs = [max(s) for s in self.img_scale]
            shorts = [min(s) for s in self.img_scale]
            long_edge = np.random.randint(min(longs), max(longs) + 1)
            short_edge = np.random.randint(min(shorts), max(shorts) + 1)
            scale, idx = (long_edge, short_edge), None
        else:
            idx = np.random.randint(len(self.img_scale))
            scale = self.img_scale[idx]
        results["scale"] = scale
        results["scale_idx"] = idx

    def _resize_img(self, results: dict) -> None:
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            h, w = img.shape[:2]
            if self.keep_ratio:
                img, _ = imrescale(img, results["scale"], self.interpolation)
            else:
                img = imresize(img, results["scale"], self.interpolation)
            new_h, new_w = img.shape[:2]
            results[key] = img
            results["img_shape"] = img.shape
            results["pad_shape"] = img.shape  # in case no Pad follows
            results["scale_factor"] = np.array([new_w / w, new_h / h, new_w / w, new_h / h], dtype=np.float32)
            results["keep_ratio"] = self.keep_ratio

    def _resize_bboxes(self, results: dict) -> None:
        for key in results.get("bbox_fields", []):
            bboxes = results[key] * results["scale_factor"]
            results[key] = clip_bboxes_(bboxes, results["img_shape"]) if self.bbox_clip_border else bboxes

    def _resize_masks(self, results: dict) -> None:
        for key in results.get("mask_fields", []):
            if self.keep_ratio:
                results[key] = results[key].rescale(results["scale"])
            else:
                results[key] = results[key].resize(results["img_shape"][:2])

    def _resize_seg(self, results: dict) -> None:
        for key in results.get("seg_fields", []):
            if self.keep_ratio:
                results[key], _ = imrescale(results[key], results["scale"], "nearest")
            else:
                results[key] = imresize(results[key], results["scale"], "nearest")

    def __call__(self, results: dict) -> dict:
        if "scale" not in results:
            if "scale_factor" in results:
                factor = results["scale_factor"]
                if not isinstance(factor, float):
                    raise TypeError(f"Resize: results['scale_factor'] must be a float, got {factor!r}")
                h, w = results["img"].shape[:2]
                results["scale"] = (int(w * factor), int(h * factor))
            else:
                self._random_scale(results)
        elif self.override:
            results.pop("scale")
            results.pop("scale_factor", None)
            self._random_scale(results)
        elif "scale_factor" in results:
            raise ValueError("Resize: results already hold 'scale' and 'scale_factor' from an earlier Resize; "
                             "set override=True on this one to resize again")
        self._resize_img(results)
        self._resize_bboxes(results)
        self._resize_masks(results)
        self._resize_seg(results)
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(img_scale={self.img_scale}, multiscale_mode={self.multiscale_mode!r}, "
                f"ratio_range={self.ratio_range}, keep_ratio={self.keep_ratio}, "
                f"bbox_clip_border={self.bbox_clip_border}, override={self.override})")



@PIPELINES.register_module()
class RandomFlip:
    """Flip images, boxes, masks and maps (mmdet 2.x ``RandomFlip``).

    Args:
        flip_ratio: probability of flipping (float), or one probability per direction (list, sum <= 1);
            None means never flip unless ``results['flip']`` is set (test time).
        direction: 'horizontal', 'vertical', 'diagonal' or a list of them. A float ratio is split evenly
            among the listed directions.

    When ``results`` already has ``flip`` / ``flip_direction`` (``MultiScaleFlipAug``), they are used as is.
    """

    def __init__(self, flip_ratio=None, direction="horizontal"):
        directions = direction if isinstance(direction, list) else [direction]
        if not set(directions) <= set(FLIP_DIRECTIONS):
            raise ValueError(f"RandomFlip: direction must be among {FLIP_DIRECTIONS}, got {direction!r}")
        if isinstance(flip_ratio, list):
            if len(flip_ratio) != len(directions):
                raise ValueError(f"RandomFlip: {len(flip_ratio)} flip ratios for {len(directions)} directions")
            if not all(0 <= r <= 1 for r in flip_ratio) or sum(flip_ratio) > 1:
                raise ValueError(f"RandomFlip: flip ratios must lie in [0, 1] and sum to <= 1, got {flip_ratio}")
        elif flip_ratio is not None and not 0 <= flip_ratio <= 1:
            raise ValueError(f"RandomFlip: flip_ratio must lie in [0, 1], got {flip_ratio}")
        self.flip_ratio = flip_ratio
        self.direction = direction

    def _draw_direction(self):
        directions = (self.direction if isinstance(self.direction, list) else [self.direction]) + [None]
        if isinstance(self.flip_ratio, list):
            probs = list(self.flip_ratio) + [1 - sum(self.flip_ratio)]
        else:
            ratio = self.flip_ratio or 0.0
            probs = [ratio / (len(directions) - 1)] * (len(directions) - 1) + [1 - ratio]
        return np.random.choice(np.array(directions, dtype=object), p=probs)

    def __call__(self, results: dict) -> dict:
        if "flip" not in results:
            direction = self._draw_direction()
            results["flip"] = direction is not None
            results.setdefault("flip_direction", direction)
        elif "flip_direction" not in results:
            results["flip_direction"] = self.direction if results["flip"] else None
        if results["flip"]:
            direction = results["flip_direction"]
            for key in results.get("img_fields", ["img"]):
                results[key] = imflip(results[key], direction)
            for key in results.get("bbox_fields", []):
                results[key] = bbox_flip(results[key], results["img_shape"], direction)
            for key in results.get("mask_fields", []):
                results[key] = results[key].flip(direction)
            for key in results.get("seg_fields", []):
                results[key] = imflip(results[key], direction)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(flip_ratio={self.flip_ratio})"


@PIPELINES.register_module()
class Normalize:
    """``(img - mean) / std`` (BGR->RGB first if ``to_rgb``), bit-exact with mmcv; sets ``img_norm_cfg``."""

    def __init__(self, mean, std, to_rgb: bool = True):
        self.mean = np.array(mean, dtype=np.float32)
        self.std = np.array(std, dtype=np.float32)
        self.to_rgb = to_rgb

    def __call__(self, results: dict) -> dict:
        for key in results.get("img_fields", ["img"]):
            results[key] = imnormalize(results[key], self.mean, self.std, self.to_rgb)
        results["img_norm_cfg"] = dict(mean=self.mean, std=self.std, to_rgb=self.to_rgb)
        return results

    def __repr__(self) -> str:
        return f"{type(self).__name__}(mean={self.mean.tolist()}, std={self.std.tolist()}, to_rgb={self.to_rgb})"


@PIPELINES.register_module()
class Pad:
    """Pad images (bottom/right) to a fixed ``size = (h, w)``, to multiples of ``size_divisor`` or to a square;
    masks and maps follow to ``pad_shape``.

    Args:
        size: fixed ``(h, w)``; larger images are left as they are.
        size_divisor: pad each side up to a multiple of it.
        pad_to_square: pad to ``max(h, w)`` square.
        pad_val: ``dict(img=0, masks=0, seg=255)`` (a number is used for img and masks, as in 2.11).
    """

    def __init__(self, size=None, size_divisor=None, pad_to_square: bool = False, pad_val=None):
        if pad_val is None:
            pad_val = dict(img=0, masks=0, seg=255)
        elif isinstance(pad_val, (int, float)):
            pad_val = dict(img=pad_val, masks=pad_val, seg=255)
        if pad_to_square:
            if size is not None or size_divisor is not None:
                raise ValueError("Pad: pad_to_square=True excludes size and size_divisor")
        elif (size is None) == (size_divisor is None):
            raise ValueError("Pad: give exactly one of size and size_divisor (or pad_to_square=True)")
        self.size = tuple(size) if size is not None else None
        self.size_divisor = size_divisor
        self.pad_to_square = pad_to_square
        self.pad_val = pad_val

    def __call__(self, results: dict) -> dict:
        img_pad = self.pad_val.get("img", 0)
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            if self.pad_to_square:
                side = max(img.shape[:2])
                padded = impad(img, (side, side), img_pad)
            elif self.size is not None:
                padded = impad(img, self.size, img_pad)
            else:
                padded = impad_to_multiple(img, self.size_divisor, img_pad)
            results[key] = padded
            results["pad_shape"] = padded.shape
        results["pad_fixed_size"] = self.size
        results["pad_size_divisor"] = self.size_divisor
        pad_hw = results["pad_shape"][:2]
        for key in results.get("mask_fields", []):
            results[key] = results[key].pad(pad_hw, pad_val=self.pad_val.get("masks", 0))
        for key in results.get("seg_fields", []):
            results[key] = impad(results[key], pad_hw, self.pad_val.get("seg", 255))
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(size={self.size}, size_divisor={self.size_divisor}, "
                f"pad_to_square={self.pad_to_square}, pad_val={self.pad_val})")


@PIPELINES.register_module()
class RandomCrop:
    """Crop a random window (mmdet 2.x ``RandomCrop``, 2.18+ ``recompute_bbox``).

    Args:
        crop_size: ``(h, w)``: absolute pixels for 'absolute' / 'absolute_range' (then ``(min, max)``),
            fractions in (0, 1] for 'relative' / 'relative_range'.
        crop_type: 'absolute' -> ``(min(h, ch), min(w, cw))``; 'absolute_range' -> h and w drawn independently
            from ``randint[min(H, lo), min(H, hi)]``; 'relative' -> ``int(H * ch + 0.5)``; 'relative_range' ->
            fraction drawn from ``U[c, 1)`` per side.
        allow_negative_crop: keep a crop that contains no gt box (else return None so the dataset redraws).
        recompute_bbox: re-derive boxes from the cropped masks (``[xmin, ymin, xmax + 1, ymax + 1]``).
        bbox_clip_border: clip boxes to the crop.

    Boxes with non-positive width or height after the crop are removed with their labels and masks.
    """

    _CROP_TYPES = ("relative_range", "relative", "absolute", "absolute_range")

    def __init__(self, crop_size, crop_type: str = "absolute", allow_negative_crop: bool = False,
                 recompute_bbox: bool = False, bbox_clip_border: bool = True):
        if crop_type not in self._CROP_TYPES:
            raise ValueError(f"RandomCrop: crop_type must be one of {self._CROP_TYPES}, got {crop_type!r}")
        if crop_type in ("absolute", "absolute_range"):
            if not (crop_size[0] > 0 and crop_size[1] > 0 and all(isinstance(c, int) for c in crop_size)):
                raise ValueError(f"RandomCrop: {crop_type} crop_size must be positive ints, got {crop_size}")
            if crop_type == "absolute_range" and crop_size[0] > crop_size[1]:
                raise ValueError(f"RandomCrop: absolute_range crop_size must be (min, max), got {crop_size}")
        elif not (0 < crop_size[0] <= 1 and 0 < crop_size[1] <= 1):
            raise ValueError(f"RandomCrop: {crop_type} crop_size must lie in (0, 1], got {crop_size}")
        self.crop_size = tuple(crop_size)
        self.crop_type = crop_type
        self.allow_negative_crop = allow_negative_crop
        self.recompute_bbox = recompute_bbox
        self.bbox_clip_border = bbox_clip_border
        self.bbox2label = {"gt_bboxes": "gt_labels", "gt_bboxes_ignore": "gt_labels_ignore"}
        self.bbox2mask = {"gt_bboxes": "gt_masks", "gt_bboxes_ignore": "gt_masks_ignore"}

    def _get_crop_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        h, w = image_size
        if self.crop_type == "absolute":
            return min(self.crop_size[0], h), min(self.crop_size[1], w)
        if self.crop_type == "absolute_range":
            lo, hi = self.crop_size
            crop_h = np.random.randint(min(h, lo), min(h, hi) + 1)
            crop_w = np.random.randint(min(w, lo), min(w, hi) + 1)
            return crop_h, crop_w
        if self.crop_type == "relative":
            return int(h * self.crop_size[0] + 0.5), int(w * self.crop_size[1] + 0.5)
        frac = np.asarray(self.crop_size, dtype=np.float32)
        frac_h, frac_w = frac + np.random.rand(2) * (1 - frac)
        return int(h * frac_h + 0.5), int(w * frac_w + 0.5)

    def _crop_data(self, results: dict, crop_size: tuple[int, int]):
        for key in results.get("img_fields", ["img"]):
            img = results[key]
            margin_h = max(img.shape[0] - crop_size[0], 0)
            margin_w = max(img.shape[1] - crop_size[1], 0)
            offset_h = np.random.randint(0, margin_h + 1)
            offset_w = np.random.randint(0, margin_w + 1)
            y1, y2 = offset_h, offset_h + crop_size[0]
            x1, x2 = offset_w, offset_w + crop_size[1]
            results[key] = img[y1:y2, x1:x2, ...]
            img_shape = results[key].shape
        results["img_shape"] = img_shape
        offset = np.array([offset_w, offset_h, offset_w, offset_h], dtype=np.float32)
        for key in results.get("bbox_fields", []):
            bboxes = results[key] - offset
            if self.bbox_clip_border:
                clip_bboxes_(bboxes, img_shape)
            valid = (bboxes[:, 2] > bboxes[:, 0]) & (bboxes[:, 3] > bboxes[:, 1])
            if key == "gt_bboxes" and not valid.any() and not self.allow_negative_crop:
                return None
            results[key] = bboxes[valid]
            label_key = self.bbox2label.get(key)
            if label_key in results:
                results[label_key] = results[label_key][valid]
            mask_key = self.bbox2mask.get(key)
            if mask_key in results:
                results[mask_key] = results[mask_key][np.flatnonzero(valid)].crop(
                    np.asarray([x1, y1, x2, y2]))
                if self.recompute_bbox:
                    results[key] = results[mask_key].get_bboxes()
        for key in results.get("seg_fields", []):
            results[key] = results[key][y1:y2, x1:x2]
        return results

    def __call__(self, results: dict):
        crop_size = self._get_crop_size(results["img"].shape[:2])
        return self._crop_data(results, crop_size)

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(crop_size={self.crop_size}, crop_type={self.crop_type!r}, "
                f"allow_negative_crop={self.allow_negative_crop}, recompute_bbox={self.recompute_bbox}, "
                f"bbox_clip_border={self.bbox_clip_border})")


@PIPELINES.register_module()
class FilterAnnotations:
    """Drop instances whose box is too small (and/or whose mask is too small), mmdet 2.28 ``FilterAnnotations``.

    Args:
        min_gt_bbox_wh: keep boxes with ``w > min_w`` and ``h > min_h``.
        min_gt_mask_area: keep masks with at least this many pixels (``by_mask``).
        by_box, by_mask: which tests apply (at least one).
        keep_empty: return None (the dataset then redraws another sample) when instances existed but none is
            kept. A sample that had no instance to begin with passes through.
    """

    def __init__(self, min_gt_bbox_wh=(1.0, 1.0), min_gt_mask_area: int = 1, by_box: bool = True,
                 by_mask: bool = False, keep_empty: bool = True):
        if not (by_box or by_mask):
            raise ValueError("FilterAnnotations: at least one of by_box and by_mask must be True")
        self.min_gt_bbox_wh = tuple(min_gt_bbox_wh)
        self.min_gt_mask_area = min_gt_mask_area
        self.by_box = by_box
        self.by_mask = by_mask
        self.keep_empty = keep_empty

    def __call__(self, results: dict):
        num = len(results["gt_bboxes"]) if self.by_box else len(results["gt_masks"])
        if num == 0:
            return results
        keep = np.ones(num, dtype=bool)
        if self.by_box:
            boxes = results["gt_bboxes"]
            keep &= ((boxes[:, 2] - boxes[:, 0]) > self.min_gt_bbox_wh[0]) & \
                    ((boxes[:, 3] - boxes[:, 1]) > self.min_gt_bbox_wh[1])
        if self.by_mask:
            keep &= results["gt_masks"].areas >= self.min_gt_mask_area
        for key in ("gt_bboxes", "gt_labels", "gt_masks"):
            if key in results:
                results[key] = results[key][np.flatnonzero(keep)] if key == "gt_masks" else results[key][keep]
        if not keep.any() and self.keep_empty:
            return None
        return results

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(min_gt_bbox_wh={self.min_gt_bbox_wh}, "
                f"min_gt_mask_area={self.min_gt_mask_area}, by_box={self.by_box}, by_mask={self.by_mask}, "
                f"keep_empty={self.keep_empty})")
