"""``BaseDetector``: the mmdetection 2.x detector interface (forward dispatch, loss parsing, train/val steps,
result drawing)."""
from __future__ import annotations

import inspect
from abc import ABCMeta, abstractmethod
from collections import OrderedDict

import torch
import torch.distributed as dist
from torch import nn

from mmdet.core.visualization import imshow_det_bboxes, parse_det_result
from mmdet.models.layers.conv_module import init_children_weights

__all__ = ["BaseDetector"]


class BaseDetector(nn.Module, metaclass=ABCMeta):
    """Base of all detectors.

    ``forward(img, img_metas, return_loss=True, **kwargs)`` dispatches to ``forward_train`` (losses dict) or
    ``forward_test`` (``img`` / ``img_metas`` given as lists over test-time augmentations).

    ``channels_last=True`` keeps the 4-D weights and the input images in ``torch.channels_last`` memory format
    (same values, NHWC strides), which the CPU convolution kernels run faster: measured on 2 CPU cores, Mask
    R-CNN R50-FPN at 512x768 inference 1.28 -> 1.18 s, training step 2.21 -> 2.16 s
    (``python -m benchmarks.maskrcnn_cpu --quick`` reports both).
    """

    def __init__(self, init_cfg=None, channels_last: bool = False):
        super().__init__()
        self.init_cfg = init_cfg
        self.fp16_enabled = False
        self.CLASSES = None
        self.channels_last = bool(channels_last)

    def apply_memory_format(self) -> None:
        """Put the 4-D parameters and buffers in channels-last strides when ``channels_last`` (values unchanged;
        the Parameter objects are kept, so optimizers built before stay valid)."""
        if self.channels_last:
            self.to(memory_format=torch.channels_last)

    def _input_memory_format(self, img):
        """The input image(s) in the model's memory format (a tensor or a list of tensors)."""
        if not self.channels_last:
            return img
        if isinstance(img, (list, tuple)):
            return [self._input_memory_format(i) for i in img]
        return img.contiguous(memory_format=torch.channels_last) if img.dim() == 4 else img

    @property
    def with_neck(self) -> bool:
        return getattr(self, "neck", None) is not None

    @property
    def with_shared_head(self) -> bool:
        return getattr(self, "roi_head", None) is not None and self.roi_head.with_shared_head

    @property
    def with_bbox(self) -> bool:
        return ((getattr(self, "roi_head", None) is not None and self.roi_head.with_bbox)
                or getattr(self, "bbox_head", None) is not None)

    @property
    def with_mask(self) -> bool:
        return ((getattr(self, "roi_head", None) is not None and self.roi_head.with_mask)
                or getattr(self, "mask_head", None) is not None)

    @abstractmethod
    def extract_feat(self, imgs: torch.Tensor):
        """``(N, 3, H, W)`` -> tuple of feature maps."""

    def extract_feats(self, imgs: list[torch.Tensor]) -> list:
        return [self.extract_feat(img) for img in imgs]

    def init_weights(self) -> None:
        """Backbone: ``backbone.init_weights(pretrained=self.pretrained)`` (its own ``init_cfg`` when None);
        every other part: its mmdet default initialisation."""
        pretrained = getattr(self, "pretrained", None)
        backbone = getattr(self, "backbone", None)
        for name, child in self.named_children():
            if child is backbone and callable(getattr(child, "init_weights", None)):
                if "pretrained" in inspect.signature(child.init_weights).parameters:
                    child.init_weights(pretrained=pretrained)
                elif pretrained is not None:
                    raise TypeError(f"model.pretrained is set but {type(child).__name__}.init_weights() takes no "
                                    f"'pretrained'; put the checkpoint in the backbone's init_cfg instead")
                else:
                    child.init_weights()
            elif callable(getattr(child, "init_weights", None)):
                child.init_weights()
            else:
                init_children_weights(child)

    @staticmethod
    def _set_batch_input_shape(img: torch.Tensor, img_metas: list[dict]) -> None:
        shape = tuple(img.size()[-2:])
        for meta in img_metas:
            meta["batch_input_shape"] = shape

    def forward_train(self, imgs: torch.Tensor, img_metas: list[dict], **kwargs) -> dict:
        """Sets ``batch_input_shape`` in every meta; subclasses compute the losses."""
        self._set_batch_input_shape(imgs, img_metas)
        return {}

    @abstractmethod
    def simple_test(self, img, img_metas, **kwargs):
        """Single-augmentation test."""

    @abstractmethod
    def aug_test(self, imgs, img_metas, **kwargs):
        """Multi-augmentation test."""

    def forward_test(self, imgs: list[torch.Tensor], img_metas: list[list[dict]], **kwargs):
        """``imgs``: one ``(N, 3, H, W)`` tensor per augmentation; ``img_metas``: per augmentation a list of N
        metas. One augmentation -> ``simple_test``, several -> ``aug_test`` (batch size 1)."""
        for var, name in ((imgs, "imgs"), (img_metas, "img_metas")):
            if not isinstance(var, list):
                raise TypeError(f"forward_test: {name} must be a list over augmentations, got {type(var).__name__}")
        if len(imgs) != len(img_metas):
            raise ValueError(f"forward_test: {len(imgs)} augmented images but {len(img_metas)} img_metas lists")
        for img, metas in zip(imgs, img_metas):
            self._set_batch_input_shape(img, metas)
        if len(imgs) == 1:
            if "proposals" in kwargs:
                kwargs["proposals"] = kwargs["proposals"][0]
            return self.simple_test(imgs[0], img_metas[0], **kwargs)
        if imgs[0].size(0) != 1:
            raise ValueError(f"aug test supports batch size 1 only, got {imgs[0].size(0)}")
        if "proposals" in kwargs:
            raise ValueError("aug test does not take precomputed proposals")
        return self.aug_test(imgs, img_metas, **kwargs)

    def forward(self, img, img_metas, return_loss: bool = True, **kwargs):
        """``return_loss=True``: ``forward_train(img, img_metas, **kwargs)``; else ``forward_test``."""
        img = self._input_memory_format(img)
        if return_loss:
            return self.forward_train(img, img_metas, **kwargs)
        return self.forward_test(img, img_metas, **kwargs)

    @staticmethod
    def _parse_losses(losses: dict) -> tuple[torch.Tensor, "OrderedDict[str, float]"]:
        """Tensors -> mean, lists -> sum of means; ``loss`` = sum of entries whose name contains ``'loss'``.
        Logged values are averaged over ranks (one all-reduce) when distributed."""
        log_vars = OrderedDict()
        for name, value in losses.items():
            if isinstance(value, torch.Tensor):
                log_vars[name] = value.mean()
            elif isinstance(value, (list, tuple)):
                log_vars[name] = sum(v.mean() for v in value)
            else:
                raise TypeError(f"loss '{name}' must be a tensor or a list of tensors, got {type(value).__name__}")
        loss = sum(v for k, v in log_vars.items() if "loss" in k)
        log_vars["loss"] = loss
        names = list(log_vars)
        values = torch.stack([torch.as_tensor(v, dtype=torch.float32).detach().reshape(())
                              .to(loss.device if isinstance(loss, torch.Tensor) else "cpu") for v in log_vars.values()])
        if dist.is_available() and dist.is_initialized():
            world_size = dist.get_world_size()
            count = torch.tensor([len(names)], device=values.device)
            dist.all_reduce(count)
            if int(count.item()) != len(names) * world_size:
                raise RuntimeError(f"loss keys differ across ranks (rank {dist.get_rank()} has {names})")
            dist.all_reduce(values.div_(world_size))
        parsed = OrderedDict(zip(names, values.tolist()))
        return loss, parsed

    def train_step(self, data: dict, optimizer=None) -> dict:
        """``losses = self(**data)`` -> ``dict(loss, log_vars, num_samples)`` (the optimizer hook steps)."""
        losses = self(**data)
        loss, log_vars = self._parse_losses(losses)
        return dict(loss=loss, log_vars=log_vars, num_samples=len(data["img_metas"]))

    def val_step(self, data: dict, optimizer=None) -> dict:
        """Same as :meth:`train_step` (a ``('val', 1)`` workflow computes losses)."""
        return self.train_step(data, optimizer)

    def show_result(self, img, result, score_thr: float = 0.3, bbox_color=(72, 101, 241),
                    text_color=(72, 101, 241), mask_color=None, thickness: int = 2, font_size: int = 13,
                    win_name: str = "", show: bool = False, wait_time: float = 0, out_file: str | None = None):
        """Draw detections with score > ``score_thr``: semi-transparent masks (per-class colours, or
        ``mask_color``), boxes and ``class|score`` labels (:func:`mmdet.core.visualization.imshow_det_bboxes`).

        Args:
            img: image path or BGR uint8 array ``(H, W, 3)``.
            result: ``bbox_results`` or ``(bbox_results, segm_results)`` as returned by ``simple_test``.
            out_file: write the drawing there (directories are created).
        Returns: the drawn image when neither ``show`` nor ``out_file`` is given.
        """
        bboxes, labels, segms = parse_det_result(result)
        drawn = imshow_det_bboxes(img, bboxes, labels, segms, class_names=self.CLASSES, score_thr=score_thr,
                                  bbox_color=bbox_color, text_color=text_color, mask_color=mask_color,
                                  thickness=thickness, font_size=font_size, win_name=win_name, show=show,
                                  wait_time=wait_time, out_file=out_file)
        if not (show or out_file):
            return drawn
        return None
