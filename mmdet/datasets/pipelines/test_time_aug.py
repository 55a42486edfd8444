"""``MultiScaleFlipAug``: run the inner transforms once per (scale, flip) combination (mmdetection 2.x)."""
from __future__ import annotations

import warnings

from mmdet.registry import PIPELINES

from .compose import Compose
from .transforms import as_scale_list


@PIPELINES.register_module()
class MultiScaleFlipAug:
    """Test-time augmentation wrapper.

    Args:
        transforms: inner transform configs (Resize, RandomFlip, Normalize, Pad, ImageToTensor, Collect).
        img_scale: one scale or a list (sets ``results['scale']``); exclusive with ``scale_factor``.
        scale_factor: one float or a list (sets ``results['scale_factor']``).
        flip: also run flipped passes, one per entry of ``flip_direction``.
        flip_direction: 'horizontal', 'vertical', 'diagonal' or a list.

    The un-flipped pass carries ``flip=False, flip_direction=None``. Returns a dict whose every key holds a
    list with one entry per augmentation, in order: scales outer, (no flip, flips...) inner.
    """

    def __init__(self, transforms, img_scale=None, scale_factor=None, flip: bool = False,
                 flip_direction="horizontal"):
        if (img_scale is None) == (scale_factor is None):
            raise ValueError("MultiScaleFlipAug: give exactly one of img_scale and scale_factor")
        self.transforms = Compose(transforms)
        if img_scale is not None:
            self.img_scale = as_scale_list(img_scale)
            self.scale_key = "scale"
        else:
            self.img_scale = scale_factor if isinstance(scale_factor, list) else [scale_factor]
            self.scale_key = "scale_factor"
        self.flip = flip
        self.flip_direction = flip_direction if isinstance(flip_direction, list) else [flip_direction]
        if not self.flip and self.flip_direction != ["horizontal"]:
            warnings.warn("MultiScaleFlipAug: flip_direction has no effect when flip is False")
        if self.flip and not any(t.get("type") == "RandomFlip" for t in transforms if isinstance(t, dict)):
            warnings.warn("MultiScaleFlipAug: flip=True but the inner transforms have no RandomFlip")

    def __call__(self, results: dict) -> dict:
        flip_args = [(False, None)] + ([(True, d) for d in self.flip_direction] if self.flip else [])
        aug_data = []
        for scale in self.img_scale:
            for flip, direction in flip_args:
                one = results.copy()
                one[self.scale_key] = scale
                one["flip"] = flip
                one["flip_direction"] = direction
                aug_data.append(self.transforms(one))
        return {key: [d[key] for d in aug_data] for key in aug_data[0]}

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(transforms={self.transforms}, img_scale={self.img_scale}, "
                f"flip={self.flip}, flip_direction={self.flip_direction})")
