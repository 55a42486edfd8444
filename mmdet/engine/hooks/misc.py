"""Small hooks: ``NumClassCheckHook`` (head ``num_classes`` vs dataset ``CLASSES``) and ``EmptyCacheHook``."""
from __future__ import annotations

import torch
from torch import nn

from mmdet.registry import HOOKS

from .hook import Hook

#: modules whose ``num_classes`` is not the dataset's class count (mmdetection 2.x skips the same ones)
_CLASS_AGNOSTIC_MODULES = ("RPNHead", "GARPNHead", "FusedSemanticHead", "VGG")


def check_num_classes(model: nn.Module, dataset) -> None:
    """Raise ``ValueError`` when a head's ``num_classes`` differs from ``len(dataset.CLASSES)``.

    Catches the common mistake of training on a custom dataset without setting
    ``model.roi_head.bbox_head.num_classes`` (and ``mask_head``) in the config.
    """
    classes = getattr(dataset, "CLASSES", None)
    if classes is None:
        return
    name = type(dataset).__name__
    if isinstance(classes, str):
        raise ValueError(f"{name}.CLASSES is the string {classes!r}; it must be a tuple of class names, "
                         f"e.g. classes=({classes!r},) with a trailing comma")
    model = getattr(model, "module", model)
    for module_name, module in model.named_modules():
        num_classes = getattr(module, "num_classes", None)
        if num_classes is None or type(module).__name__ in _CLASS_AGNOSTIC_MODULES:
            continue
        if num_classes != len(classes):
            raise ValueError(
                f"num_classes={num_classes} in {module_name or 'model'} ({type(module).__name__}) does not match "
                f"the {len(classes)} CLASSES of {name} {tuple(classes)}; set num_classes={len(classes)} for every "
                f"bbox/mask head in the config (e.g. --cfg-options model.roi_head.bbox_head.num_classes="
                f"{len(classes)})")


@HOOKS.register_module()
class NumClassCheckHook(Hook):
    """Check head ``num_classes`` against the dataset before every train / val epoch."""

    def before_train_epoch(self, runner):
        check_num_classes(runner.model, runner.data_loader.dataset)

    def before_val_epoch(self, runner):
        check_num_classes(runner.model, runner.data_loader.dataset)


@HOOKS.register_module()
class EmptyCacheHook(Hook):
    """``torch.cuda.empty_cache()`` before / after epochs and / or after iterations."""

    def __init__(self, before_epoch: bool = False, after_epoch: bool = True, after_iter: bool = False):
        self._before_epoch = before_epoch
        self._after_epoch = after_epoch
        self._after_iter = after_iter

    def _empty(self):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def after_iter(self, runner):
        if self._after_iter:
            self._empty()

    def before_epoch(self, runner):
        if self._before_epoch:
            self._empty()

    def after_epoch(self, runner):
        if self._after_epoch:
            self._empty()
