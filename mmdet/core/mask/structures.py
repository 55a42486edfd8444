"""Instance-mask containers with the mmdetection 2.x API: :class:`BitmapMasks` and :class:`PolygonMasks`.

Both hold the masks of the ``n`` instances of one image on a canvas of ``height x width`` pixels and
support the geometric operations the data pipeline and the mask-target code need (rescale, resize,
flip, pad, crop, crop_and_resize, expand, translate, shear, rotate), conversions (``to_ndarray``,
``to_tensor``) and queries (``areas``, ``get_bboxes``).

* ``BitmapMasks.masks`` is an ``(n, H, W)`` array (uint8 0/1 as loaded by ``LoadAnnotations``).
* ``PolygonMasks.masks`` is a list of ``n`` instances, each a list of 1-D float arrays
  ``[x0, y0, x1, y1, ...]`` (an instance may have several polygons).

Bitmaps are resized with OpenCV (``INTER_NEAREST`` by default, as mmcv's ``imrescale``/``imresize``), all
instances in one call.
"""
from __future__ import annotations

from abc import ABCMeta, abstractmethod
from typing import Sequence

import cv2
import numpy as np
import pycocotools.mask as mask_utils
import torch
from torchvision.ops import roi_align

_CV2_INTERP = {
    "nearest": cv2.INTER_NEAREST,
    "bilinear": cv2.INTER_LINEAR,
    "bicubic": cv2.INTER_CUBIC,
    "area": cv2.INTER_AREA,
    "lanczos": cv2.INTER_LANCZOS4,
}


def cv2_interpolation(name: str) -> int:
    """OpenCV flag for an mmcv interpolation name ('nearest', 'bilinear', 'bicubic', 'area', 'lanczos')."""
    try:
        return _CV2_INTERP[name]
    except KeyError:
        raise ValueError(f"interpolation must be one of {sorted(_CV2_INTERP)}, got {name!r}") from None


def rescale_size(old_size: tuple[int, int], scale, return_scale: bool = False):
    """New ``(w, h)`` of an image of size ``old_size = (w, h)`` rescaled keeping its aspect ratio (mmcv rule).

    ``scale`` is a positive number (the factor) or a pair of edge lengths: the factor is then
    ``min(max(scale) / max(h, w), min(scale) / min(h, w))``, so the long side fits ``max(scale)`` and the
    short side ``min(scale)``. Each side is rounded as ``int(x * factor + 0.5)``.
    """
    w, h = old_size
    if isinstance(scale, (float, int)) and not isinstance(scale, bool):
        if scale <= 0:
            raise ValueError(f"scale factor must be positive, got {scale}")
        factor = scale
    elif isinstance(scale, (tuple, list)) and len(scale) == 2:
        factor = min(max(scale) / max(h, w), min(scale) / min(h, w))
    else:
        raise TypeError(f"scale must be a number or a (long, short) pair, got {scale!r}")
    new_size = (int(w * float(factor) + 0.5), int(h * float(factor) + 0.5))
    return (new_size, factor) if return_scale else new_size


def _warp_affine_stack(masks: np.ndarray, matrix: np.ndarray, out_hw: tuple[int, int], border_value,
                       interpolation: str) -> np.ndarray:
    """``cv2.warpAffine`` of an ``(n, H, W)`` stack to ``(n, out_h, out_w)``, 4 channels per call (OpenCV's limit)."""
    n = masks.shape[0]
    out_h, out_w = out_hw
    out = np.empty((n, out_h, out_w), dtype=masks.dtype)
    flag = cv2_interpolation(interpolation)
    for start in range(0, n, 4):
        chunk = np.ascontiguousarray(masks[start:start + 4].transpose(1, 2, 0))
        warped = cv2.warpAffine(chunk, matrix, (out_w, out_h), flags=flag, borderMode=cv2.BORDER_CONSTANT,
                                borderValue=border_value)
        if warped.ndim == 2:
            warped = warped[:, :, None]
        out[start:start + 4] = warped.transpose(2, 0, 1)
    return out


def _translate_matrix(offset: float, direction: str) -> np.ndarray:
    if direction == "horizontal":
        return np.float32([[1, 0, offset], [0, 1, 0]])
    if direction == "vertical":
        return np.float32([[1, 0, 0], [0, 1, offset]])
    raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")


def _shear_matrix(magnitude: float, direction: str) -> np.ndarray:
    if direction == "horizontal":
        return np.float32([[1, magnitude, 0], [0, 1, 0]])
    if direction == "vertical":
        return np.float32([[1, 0, 0], [magnitude, 1, 0]])
    raise ValueError(f"direction must be 'horizontal' or 'vertical', got {direction!r}")


def _rotate_matrix(angle: float, center, scale: float, height: int, width: int) -> np.ndarray:
    """mmcv ``imrotate`` matrix: clockwise ``angle`` degrees about ``center`` (default: the canvas centre)."""
    if center is None:
        center = ((width - 1) * 0.5, (height - 1) * 0.5)
    return cv2.getRotationMatrix2D(tuple(float(c) for c in center), -angle, scale)


def _check_flip_direction(direction: str) -> None:
    if direction not in ("horizontal", "vertical", "diagonal"):
        raise ValueError(f"flip direction must be 'horizontal', 'vertical' or 'diagonal', got {direction!r}")


def _clip_crop_box(bbox: np.ndarray, height: int, width: int) -> tuple[int, int, int, int]:
    """Clip an ``(x1, y1, x2, y2)`` crop box to the canvas; returns ``x1, y1, w, h`` with w, h >= 1."""
    if not (isinstance(bbox, np.ndarray) and bbox.ndim == 1 and bbox.shape[0] == 4):
        raise ValueError(f"crop box must be a numpy array (x1, y1, x2, y2), got {bbox!r}")
    box = bbox.copy()
    box[0::2] = np.clip(box[0::2], 0, width)
    box[1::2] = np.clip(box[1::2], 0, height)
    x1, y1, x2, y2 = (int(v) for v in box)
    return x1, y1, max(x2 - x1, 1), max(y2 - y1, 1)


class BaseInstanceMasks(metaclass=ABCMeta):
    """What :class:`BitmapMasks` and :class:`PolygonMasks` share: canvas size, length, rescale."""

    height: int
    width: int
    masks: object

    def __len__(self) -> int:
        return len(self.masks)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(num_masks={len(self)}, height={self.height}, width={self.width})"

    def rescale(self, scale, interpolation: str = "nearest"):
        """Rescale keeping the aspect ratio; ``scale`` as in :func:`rescale_size` (the canvas scales too)."""
        new_w, new_h = rescale_size((self.width, self.height), scale)
        return self.resize((new_h, new_w), interpolation=interpolation)

    @abstractmethod
    def resize(self, out_shape: tuple[int, int], interpolation: str = "nearest"):
        """Resize the canvas (and the masks) to ``out_shape = (h, w)``."""

    @abstractmethod
    def to_ndarray(self) -> np.ndarray:
        """The masks as an ``(n, H, W)`` array."""


class BitmapMasks(BaseInstanceMasks):
    """Binary masks of ``n`` instances stored as one ``(n, H, W)`` array.

    Args:
        masks: an ``(n, H, W)`` array or a list of ``n`` ``(H, W)`` arrays (empty list: no instances).
        height, width: canvas size; must match the arrays.
    """

    def __init__(self, masks, height: int, width: int):
        self.height = int(height)
        self.width = int(width)
        if len(masks) == 0:
            self.masks = np.empty((0, self.height, self.width), dtype=np.uint8)
            return
        if isinstance(masks, list):
            masks = np.stack(masks)
        if not isinstance(masks, np.ndarray):
            raise TypeError(f"BitmapMasks expects a numpy array or a list of arrays, got {type(masks).__name__}")
        masks = masks.reshape(-1, *masks.shape[-2:])
        if masks.shape[1:] != (self.height, self.width):
            raise ValueError(f"BitmapMasks: masks of shape {masks.shape[1:]} do not match the canvas "
                             f"({self.height}, {self.width})")
        self.masks = masks

    def __getitem__(self, index) -> "BitmapMasks":
        masks = self.masks[index].reshape(-1, self.height, self.width)
        return BitmapMasks(masks, self.height, self.width)

    def __iter__(self):
        return iter(self.masks)

    def resize(self, out_shape: tuple[int, int], interpolation: str = "nearest") -> "BitmapMasks":
        """Resize every mask to ``out_shape = (h, w)`` with OpenCV (mmcv ``imresize``; 'nearest' by default).

        All masks go through ``cv2.resize`` together as the channels of one ``(H, W, n)`` image (512 channels per
        call, OpenCV's limit), which gives exactly the per-mask result. The returned array may be a transposed
        view of that image.
        """
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self.masks) == 0:
            return BitmapMasks(np.empty((0, out_h, out_w), dtype=np.uint8), out_h, out_w)
        flag = cv2_interpolation(interpolation)
        chunks = []
        for start in range(0, len(self.masks), 512):
            hwc = np.ascontiguousarray(self.masks[start:start + 512].transpose(1, 2, 0))
            chunks.append(cv2.resize(hwc, (out_w, out_h), interpolation=flag).reshape(out_h, out_w, -1))
        resized = chunks[0] if len(chunks) == 1 else np.concatenate(chunks, axis=2)
        return BitmapMasks(resized.transpose(2, 0, 1), out_h, out_w)

    def flip(self, flip_direction: str = "horizontal") -> "BitmapMasks":
        _check_flip_direction(flip_direction)
        axis = {"horizontal": (2,), "vertical": (1,), "diagonal": (1, 2)}[flip_direction]
        flipped = np.ascontiguousarray(np.flip(self.masks, axis=axis))
        return BitmapMasks(flipped, self.height, self.width)

    def pad(self, out_shape: tuple[int, int], pad_val: int = 0) -> "BitmapMasks":
        """Pad bottom/right to ``out_shape = (h, w)`` (a side already larger is kept, as mmcv ``impad``)."""
        out_h = max(int(out_shape[0]), self.height)
        out_w = max(int(out_shape[1]), self.width)
        shape = (len(self.masks), out_h, out_w)
        padded = np.zeros(shape, self.masks.dtype) if pad_val == 0 else np.full(shape, pad_val, self.masks.dtype)
        padded[:, :self.height, :self.width] = self.masks
        return BitmapMasks(padded, out_h, out_w)

    def crop(self, bbox: np.ndarray) -> "BitmapMasks":
        """Crop to the box ``(x1, y1, x2, y2)`` (clipped to the canvas; at least 1x1)."""
        x1, y1, w, h = _clip_crop_box(bbox, self.height, self.width)
        if len(self.masks) == 0:
            return BitmapMasks(np.empty((0, h, w), dtype=np.uint8), h, w)
        return BitmapMasks(self.masks[:, y1:y1 + h, x1:x1 + w], h, w)

    def crop_and_resize(self, bboxes, out_shape: tuple[int, int], inds, device="cpu",
                        interpolation: str = "bilinear", binarize: bool = True) -> "BitmapMasks":
        """RoIAlign mask ``inds[i]`` inside ``bboxes[i]`` to ``out_shape`` (mmdet 2.x mask targets).

        Args:
            bboxes: ``(m, 4)`` boxes ``(x1, y1, x2, y2)`` in canvas pixels (numpy or tensor).
            out_shape: ``(h, w)`` of each output mask (28x28 for FCNMaskHead).
            inds: ``(m,)`` index of the instance mask for every box.
            device: where RoIAlign runs.
            interpolation: only 'bilinear' (RoIAlign) exists, kept for API compatibility.
            binarize: threshold the averaged values at >= 0.5 (else keep float values).

        Returns:
            ``BitmapMasks`` of ``m`` masks ``out_shape`` (bool if binarized, else float32).

        RoIAlign is torchvision's with ``spatial_scale=1``, adaptive sampling (``sampling_ratio=0``) and
        ``aligned=True`` (pixel-centre shift of -0.5), i.e. mmcv's ``RoIAlign`` defaults.
        """
        if interpolation != "bilinear":
            raise ValueError(f"crop_and_resize only supports interpolation='bilinear' (RoIAlign), got {interpolation!r}")
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self.masks) == 0:
            return BitmapMasks(np.empty((0, out_h, out_w), dtype=np.uint8), out_h, out_w)
        bboxes = torch.as_tensor(bboxes, device=device)
        if not bboxes.is_floating_point():
            bboxes = bboxes.float()
        inds = torch.as_tensor(inds, device=device).long()
        num = bboxes.shape[0]
        if num == 0:
            return BitmapMasks(np.empty((0, out_h, out_w), dtype=np.uint8), out_h, out_w)
        batch_index = torch.arange(num, device=device, dtype=bboxes.dtype)[:, None]
        rois = torch.cat([batch_index, bboxes], dim=1)
        selected = torch.from_numpy(self.masks).to(device).index_select(0, inds).to(dtype=rois.dtype)
        targets = roi_align(selected[:, None], rois, (out_h, out_w), spatial_scale=1.0, sampling_ratio=0,
                            aligned=True).squeeze(1)
        resized = (targets >= 0.5).cpu().numpy() if binarize else targets.cpu().numpy()
        return BitmapMasks(resized, out_h, out_w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> "BitmapMasks":
        """Place the canvas at ``(top, left)`` of a zero canvas ``expanded_h x expanded_w``."""
        expanded = np.zeros((len(self.masks), expanded_h, expanded_w), dtype=self.masks.dtype)
        expanded[:, top:top + self.height, left:left + self.width] = self.masks
        return BitmapMasks(expanded, expanded_h, expanded_w)

    def translate(self, out_shape: tuple[int, int], offset: float, direction: str = "horizontal",
                  fill_val=0, interpolation: str = "bilinear") -> "BitmapMasks":
        """Shift by ``offset`` pixels along ``direction`` (mmcv ``imtranslate``) onto an ``out_shape`` canvas."""
        return self._warp_onto(out_shape, lambda: _translate_matrix(offset, direction), fill_val, interpolation)

    def shear(self, out_shape: tuple[int, int], magnitude: float, direction: str = "horizontal",
              border_value=0, interpolation: str = "bilinear") -> "BitmapMasks":
        """Shear by ``magnitude`` (mmcv ``imshear``) onto an ``out_shape`` canvas."""
        return self._warp_onto(out_shape, lambda: _shear_matrix(magnitude, direction), border_value, interpolation)

    def rotate(self, out_shape: tuple[int, int], angle: float, center=None, scale: float = 1.0,
               fill_val=0, interpolation: str = "bilinear") -> "BitmapMasks":
        """Rotate clockwise by ``angle`` degrees about ``center`` (mmcv ``imrotate``)."""
        return self._warp_onto(out_shape, lambda: _rotate_matrix(angle, center, scale, self.height, self.width),
                               fill_val, interpolation)

    def _warp_onto(self, out_shape: tuple[int, int], make_matrix, border_value, interpolation: str) -> "BitmapMasks":
        """Every mask through the 2x3 affine ``make_matrix()`` onto an ``out_shape`` canvas (no masks: an empty
        ``(0, out_h, out_w)`` stack, the matrix is not built)."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self.masks) == 0:
            return BitmapMasks(np.empty((0, out_h, out_w), dtype=np.uint8), out_h, out_w)
        warped = _warp_affine_stack(self.masks, make_matrix(), (out_h, out_w), border_value, interpolation)
        return BitmapMasks(warped, out_h, out_w)

    @property
    def areas(self) -> np.ndarray:
        """``(n,)`` number of foreground pixels per mask."""
        return self.masks.sum((1, 2))

    def to_ndarray(self) -> np.ndarray:
        return self.masks

    def to_tensor(self, dtype, device) -> torch.Tensor:
        return torch.tensor(self.masks, dtype=dtype, device=device)

    def get_bboxes(self) -> np.ndarray:
        """``(n, 4)`` float32 tight boxes ``[xmin, ymin, xmax + 1, ymax + 1]``; all zeros for an empty mask."""
        boxes = np.zeros((len(self.masks), 4), dtype=np.float32)
        if len(self.masks) == 0:
            return boxes
        cols = self.masks.any(axis=1)  # (n, W)
        rows = self.masks.any(axis=2)  # (n, H)
        nonempty = cols.any(axis=1)
        boxes[:, 0] = cols.argmax(axis=1)
        boxes[:, 1] = rows.argmax(axis=1)
        boxes[:, 2] = self.width - cols[:, ::-1].argmax(axis=1)
        boxes[:, 3] = self.height - rows[:, ::-1].argmax(axis=1)
        boxes[~nonempty] = 0
        return boxes

    @classmethod
    def random(cls, num_masks: int = 3, height: int = 32, width: int = 32, dtype=np.uint8,
               rng: np.random.RandomState | None = None) -> "BitmapMasks":
        """Random masks (about 90 % foreground) for tests."""
        rng = np.random.RandomState() if rng is None else rng
        return cls((rng.rand(num_masks, height, width) > 0.1).astype(dtype), height, width)


def polygons_to_rle(polygons: Sequence[np.ndarray], height: int, width: int) -> dict:
    """The union of the polygons of one instance as one compressed RLE (pycocotools)."""
    return mask_utils.merge(mask_utils.frPyObjects([np.asarray(p, dtype=np.float64) for p in polygons], height, width))


def polygon_to_bitmap(polygons: Sequence[np.ndarray], height: int, width: int) -> np.ndarray:
    """Rasterise the polygons of one instance (their union) to an ``(H, W)`` bool mask with pycocotools."""
    return mask_utils.decode(polygons_to_rle(polygons, height, width)).astype(bool)


def _clip_polygon_to_box(poly: np.ndarray, x1: float, y1: float, x2: float, y2: float) -> np.ndarray:
    """Sutherland-Hodgman clip of one polygon ``(2k,)`` to an axis-aligned box; returns ``(2m,)`` (m may be 0).

    A concave polygon that the box cuts in several parts comes back as one polygon whose parts are joined by
    zero-area bridges along the box edge; it rasterises to the same pixels as the separate parts.
    Each of the 4 half-plane passes is vectorised over the polygon's edges.
    """
    pts = poly.reshape(-1, 2).astype(np.float64)
    for axis, bound, keep_greater in ((0, x1, True), (0, x2, False), (1, y1, True), (1, y2, False)):
        if len(pts) == 0:
            break
        nxt = np.roll(pts, -1, axis=0)
        inside_cur = pts[:, axis] >= bound if keep_greater else pts[:, axis] <= bound
        inside_nxt = nxt[:, axis] >= bound if keep_greater else nxt[:, axis] <= bound
        crosses = inside_cur != inside_nxt
        denom = nxt[:, axis] - pts[:, axis]
        t = np.divide(bound - pts[:, axis], denom, out=np.zeros_like(denom), where=crosses)
        cut = pts + t[:, None] * (nxt - pts)
        cut[:, axis] = bound
        # every edge cur->nxt emits [intersection if it crosses] then [nxt if nxt is inside]
        emitted = np.stack([cut, nxt], axis=1).reshape(-1, 2)
        keep = np.stack([crosses, inside_nxt], axis=1).reshape(-1)
        pts = emitted[keep]
    if len(pts) < 3:
        return np.zeros(0, dtype=np.float64)
    return pts.reshape(-1)


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly[0::2], poly[1::2]
    return 0.5 * abs(float(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))))


class PolygonMasks(BaseInstanceMasks):
    """Polygon masks of ``n`` instances; each instance is a list of 1-D arrays ``[x0, y0, x1, y1, ...]``.

    Args:
        masks: list (instances) of lists (polygons) of 1-D arrays with an even number (>= 6) of coordinates.
        height, width: canvas size.
    """

    def __init__(self, masks: list, height: int, width: int):
        if not isinstance(masks, list):
            raise TypeError(f"PolygonMasks expects a list of instances, got {type(masks).__name__}")
        for inst in masks:
            if not isinstance(inst, list) or not all(isinstance(p, np.ndarray) for p in inst):
                raise TypeError("PolygonMasks expects every instance to be a list of 1-D numpy arrays "
                                "[x0, y0, x1, y1, ...]")
        self.height = int(height)
        self.width = int(width)
        self.masks = masks

    def __getitem__(self, index) -> "PolygonMasks":
        if isinstance(index, torch.Tensor):
            index = index.cpu().numpy()
        if isinstance(index, np.ndarray):
            index = np.flatnonzero(index).tolist() if index.dtype == bool else index.reshape(-1).tolist()
        if isinstance(index, list):
            masks = [self.masks[i] for i in index]
        elif isinstance(index, slice):
            masks = self.masks[index]
        else:
            masks = [self.masks[index]]
        return PolygonMasks(masks, self.height, self.width)

    def __iter__(self):
        return iter(self.masks)

    def _map_points(self, fn, height: int, width: int) -> "PolygonMasks":
        """Apply ``fn((k, 2) points) -> (k, 2)`` to every polygon; new canvas ``height x width``."""
        mapped = [[fn(p.reshape(-1, 2).astype(np.float64)).reshape(-1) for p in inst] for inst in self.masks]
        return PolygonMasks(mapped, height, width)

    def resize(self, out_shape: tuple[int, int], interpolation: str = "nearest") -> "PolygonMasks":
        """Scale the coordinates to a canvas ``out_shape = (h, w)`` (``interpolation`` is irrelevant for polygons)."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        factors = np.array([out_w / self.width, out_h / self.height])
        return self._map_points(lambda pts: pts * factors, out_h, out_w)

    def flip(self, flip_direction: str = "horizontal") -> "PolygonMasks":
        _check_flip_direction(flip_direction)
        flip_x = flip_direction in ("horizontal", "diagonal")
        flip_y = flip_direction in ("vertical", "diagonal")

        def _flip(pts):
            out = pts.copy()
            if flip_x:
                out[:, 0] = self.width - pts[:, 0]
            if flip_y:
                out[:, 1] = self.height - pts[:, 1]
            return out

        return self._map_points(_flip, self.height, self.width)

    def pad(self, out_shape: tuple[int, int], pad_val: int = 0) -> "PolygonMasks":
        """Bottom/right padding only enlarges the canvas; coordinates are unchanged."""
        return PolygonMasks(self.masks, max(int(out_shape[0]), self.height), max(int(out_shape[1]), self.width))

    def crop(self, bbox: np.ndarray) -> "PolygonMasks":
        """Crop to the box ``(x1, y1, x2, y2)``: polygons are clipped to it and shifted to its origin.

        An instance with nothing left inside gets the degenerate polygon ``[0, 0, 0, 0, 0, 0]`` (area 0) so
        instances stay aligned with their boxes (mmdet 2.28 does the same).
        """
        x1, y1, w, h = _clip_crop_box(bbox, self.height, self.width)
        cropped = []
        for inst in self.masks:
            parts = [_clip_polygon_to_box(np.asarray(p, dtype=np.float64), x1, y1, x1 + w, y1 + h) for p in inst]
            parts = [p - np.tile([x1, y1], len(p) // 2) for p in parts if len(p)]
            cropped.append(parts if parts else [np.zeros(6, dtype=np.float64)])
        return PolygonMasks(cropped, h, w)

    def crop_and_resize(self, bboxes, out_shape: tuple[int, int], inds, device="cpu",
                        interpolation: str = "bilinear", binarize: bool = True) -> "PolygonMasks":
        """Map polygon ``inds[i]`` from box ``bboxes[i]`` onto an ``out_shape`` canvas (rasterise with to_ndarray)."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        if len(self.masks) == 0:
            return PolygonMasks([], out_h, out_w)
        if not binarize:
            raise ValueError("PolygonMasks.crop_and_resize: polygons are binary, binarize=False is not supported")
        bboxes = bboxes.cpu().numpy() if isinstance(bboxes, torch.Tensor) else np.asarray(bboxes)
        inds = inds.cpu().numpy() if isinstance(inds, torch.Tensor) else np.asarray(inds)
        widths = np.maximum(bboxes[:, 2] - bboxes[:, 0], 1)
        heights = np.maximum(bboxes[:, 3] - bboxes[:, 1], 1)
        scales = np.stack([out_w / np.maximum(widths, 0.1), out_h / np.maximum(heights, 0.1)], axis=1)
        resized = []
        for box, ind, scale in zip(bboxes, inds, scales):
            resized.append([((p.reshape(-1, 2) - box[:2]) * scale).reshape(-1) for p in self.masks[int(ind)]])
        return PolygonMasks(resized, out_h, out_w)

    def expand(self, expanded_h: int, expanded_w: int, top: int, left: int) -> "PolygonMasks":
        offset = np.array([left, top], dtype=np.float64)
        return self._map_points(lambda pts: pts + offset, expanded_h, expanded_w)

    def translate(self, out_shape: tuple[int, int], offset: float, direction: str = "horizontal",
                  fill_val=None, interpolation=None) -> "PolygonMasks":
        """Shift by ``offset`` along ``direction``, clipping coordinates to the ``out_shape`` canvas."""
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        matrix = _translate_matrix(offset, direction)
        return self._affine(matrix, out_h, out_w)

    def shear(self, out_shape: tuple[int, int], magnitude: float, direction: str = "horizontal",
              border_value=0, interpolation: str = "bilinear") -> "PolygonMasks":
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        return self._affine(_shear_matrix(magnitude, direction), out_h, out_w)

    def rotate(self, out_shape: tuple[int, int], angle: float, center=None, scale: float = 1.0,
               fill_val=0, interpolation: str = "bilinear") -> "PolygonMasks":
        out_h, out_w = int(out_shape[0]), int(out_shape[1])
        return self._affine(_rotate_matrix(angle, center, scale, self.height, self.width), out_h, out_w)

    def _affine(self, matrix: np.ndarray, out_h: int, out_w: int) -> "PolygonMasks":
        """Apply a 2x3 affine matrix to every point and clip to the new canvas."""
        m = np.asarray(matrix, dtype=np.float64)
        limits = np.array([out_w, out_h], dtype=np.float64)
        return self._map_points(lambda pts: np.clip(pts @ m[:, :2].T + m[:, 2], 0, limits), out_h, out_w)

    def to_bitmap(self) -> BitmapMasks:
        return BitmapMasks(self.to_ndarray(), self.height, self.width)

    @property
    def areas(self) -> np.ndarray:
        """``(n,)`` polygon area of each instance (shoelace formula, summed over its polygons)."""
        return np.array([sum(_polygon_area(np.asarray(p, dtype=np.float64)) for p in inst)
                         for inst in self.masks], dtype=np.float64)

    def to_ndarray(self) -> np.ndarray:
        """Rasterise to an ``(n, H, W)`` bool array."""
        if len(self.masks) == 0:
            return np.empty((0, self.height, self.width), dtype=np.uint8)
        return np.stack([polygon_to_bitmap(inst, self.height, self.width) for inst in self.masks])

    def to_tensor(self, dtype, device) -> torch.Tensor:
        if len(self.masks) == 0:
            return torch.empty((0, self.height, self.width), dtype=dtype, device=device)
        return torch.tensor(self.to_ndarray(), dtype=dtype, device=device)

    def get_bboxes(self) -> np.ndarray:
        """``(n, 4)`` float32 boxes ``[min x, min y, max x, max y]`` over all polygon vertices of each instance."""
        boxes = np.zeros((len(self.masks), 4), dtype=np.float32)
        for i, inst in enumerate(self.masks):
            if not inst:
                continue
            pts = np.concatenate([np.asarray(p, dtype=np.float64) for p in inst]).reshape(-1, 2)
            boxes[i, :2] = pts.min(axis=0)
            boxes[i, 2:] = pts.max(axis=0)
        return boxes

    @classmethod
    def random(cls, num_masks: int = 3, height: int = 32, width: int = 32, n_verts: int = 5,
               rng: np.random.RandomState | None = None) -> "PolygonMasks":
        """Random star-shaped polygons (one per instance) inside the canvas, for tests."""
        rng = np.random.RandomState() if rng is None else rng
        masks = []
        for _ in range(num_masks):
            angles = np.sort(rng.uniform(0, 2 * np.pi, n_verts))
            radius = rng.uniform(0.2, 0.5, n_verts) * min(height, width)
            cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
            pts = np.stack([cx + radius * np.cos(angles), cy + radius * np.sin(angles)], axis=1)
            pts = np.clip(pts, 0, [width, height])
            masks.append([pts.reshape(-1)])
        return cls(masks, height, width)
