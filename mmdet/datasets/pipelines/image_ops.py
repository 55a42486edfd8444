"""Image decoding and geometry with mmcv 1.x semantics (``mmcv.image``), on OpenCV and numpy.

Images are ``(H, W, C)`` numpy arrays, BGR unless stated. Sizes passed to OpenCV are ``(w, h)``;
``shape`` arguments are ``(h, w)`` as in mmcv.
"""
from __future__ import annotations

import cv2
import numpy as np

from mmdet.core.mask.structures import cv2_interpolation, rescale_size

_IMREAD_FLAGS = {
    "color": cv2.IMREAD_COLOR,
    "grayscale": cv2.IMREAD_GRAYSCALE,
    "unchanged": cv2.IMREAD_UNCHANGED,
    "color_ignore_orientation": cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_COLOR,
    "grayscale_ignore_orientation": cv2.IMREAD_IGNORE_ORIENTATION | cv2.IMREAD_GRAYSCALE,
}


class SampleLoadError(OSError):
    """A sample's file cannot be used (missing, empty, undecodable, or inconsistent with its annotation).

    ``filename`` and ``reason`` are kept as attributes; in training the dataset skips such a sample
    with a warning, in test mode the error propagates.
    """

    def __init__(self, filename: str, reason: str):
        super().__init__(f"cannot use image '{filename}': {reason}")
        self.filename = filename
        self.reason = reason

    def __str__(self) -> str:
        return f"cannot use image '{self.filename}': {self.reason}"

    def __reduce__(self):  # picklable across DataLoader worker processes
        return type(self), (self.filename, self.reason)


def imread(filename: str, flag: str = "color", channel_order: str = "bgr") -> np.ndarray:
    """Read and decode an image file with ``cv2.imdecode`` (mmcv ``imfrombytes``, cv2 backend).

    ``'color'`` gives uint8 ``(H, W, 3)`` with the EXIF orientation applied, whatever the file holds
    (grayscale, 16-bit and alpha-channel files are converted by OpenCV). Raises :class:`SampleLoadError`
    naming the file and the reason when it is missing, empty or cannot be decoded.
    """
    if flag not in _IMREAD_FLAGS:
        raise ValueError(f"color_type must be one of {sorted(_IMREAD_FLAGS)}, got {flag!r}")
    try:
        with open(filename, "rb") as f:
            content = f.read()
    except FileNotFoundError:
        raise SampleLoadError(filename, "file does not exist (check img_prefix / data_root)") from None
    except OSError as e:
        raise SampleLoadError(filename, f"file cannot be read ({e.strerror or e})") from None
    if len(content) == 0:
        raise SampleLoadError(filename, "file is empty (0 bytes)")
    img = cv2.imdecode(np.frombuffer(content, np.uint8), _IMREAD_FLAGS[flag])
    if img is None:
        raise SampleLoadError(filename, f"OpenCV cannot decode its {len(content)} bytes (corrupt, truncated "
                                        f"or not an image)")
    if channel_order == "rgb" and img.ndim == 3:
        cv2.cvtColor(img, cv2.COLOR_BGR2RGB, img)
    elif channel_order not in ("bgr", "rgb"):
        raise ValueError(f"channel_order must be 'bgr' or 'rgb', got {channel_order!r}")
    return img


def exif_orientation(filename: str) -> int | None:
    """The EXIF orientation tag (1..8) of an image file, or None (used only to explain size mismatches)."""
    try:
        from PIL import Image
        with Image.open(filename) as im:
            return im.getexif().get(0x0112)
    except Exception:  # noqa: BLE001 - diagnostics only; any unreadable EXIF means "unknown"
        return None


def imresize(img: np.ndarray, size: tuple[int, int], interpolation: str = "bilinear") -> np.ndarray:
    """``cv2.resize`` to ``size = (w, h)``."""
    return cv2.resize(img, (int(size[0]), int(size[1])), interpolation=cv2_interpolation(interpolation))


def imrescale(img: np.ndarray, scale, interpolation: str = "bilinear") -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio (mmcv ``imrescale``); returns the image and the scalar factor."""
    h, w = img.shape[:2]
    new_size, factor = rescale_size((w, h), scale, return_scale=True)
    return imresize(img, new_size, interpolation), factor


def imflip(img: np.ndarray, direction: str = "horizontal") -> np.ndarray:
    """Flip an ``(H, W[, C])`` image; returns a contiguous copy."""
    axes = {"horizontal": (1,), "vertical": (0,), "diagonal": (0, 1)}
    if direction not in axes:
        raise ValueError(f"flip direction must be one of {sorted(axes)}, got {direction!r}")
    return np.ascontiguousarray(np.flip(img, axis=axes[direction]))


def impad(img: np.ndarray, shape: tuple[int, int], pad_val=0) -> np.ndarray:
    """Pad bottom/right to ``shape = (h, w)`` with ``pad_val`` (number or per-channel tuple).

    A side already longer than ``shape`` is kept (no cropping), as mmcv ``impad``.
    """
    h, w = img.shape[:2]
    out_h, out_w = max(int(shape[0]), h), max(int(shape[1]), w)
    if (out_h, out_w) == (h, w):
        return img
    if isinstance(pad_val, (tuple, list)) and img.ndim == 3 and len(pad_val) != img.shape[2]:
        raise ValueError(f"pad_val {pad_val} has {len(pad_val)} values for an image with {img.shape[2]} channels")
    out = np.empty((out_h, out_w) + img.shape[2:], dtype=img.dtype)
    out[...] = np.asarray(pad_val, dtype=img.dtype)
    out[:h, :w] = img
    return out


def impad_to_multiple(img: np.ndarray, divisor: int, pad_val=0) -> np.ndarray:
    """Pad bottom/right so both sides are multiples of ``divisor``."""
    h, w = img.shape[:2]
    return impad(img, (int(np.ceil(h / divisor)) * divisor, int(np.ceil(w / divisor)) * divisor), pad_val)


def imnormalize(img: np.ndarray, mean: np.ndarray, std: np.ndarray, to_rgb: bool = True) -> np.ndarray:
    """``(img - mean) / std`` as mmcv ``imnormalize`` computes it (bit for bit).

    The image becomes float32 (channels reversed on the way if ``to_rgb``), then OpenCV subtracts ``mean``
    and multiplies by ``1 / std`` (the reciprocal taken in float64), in place on the copy.
    """
    out = (img[..., ::-1] if to_rgb else img).astype(np.float32)
    mean64 = np.float64(np.asarray(mean).reshape(1, -1))
    stdinv = 1 / np.float64(np.asarray(std).reshape(1, -1))
    cv2.subtract(out, mean64, out)
    cv2.multiply(out, stdinv, out)
    return out
