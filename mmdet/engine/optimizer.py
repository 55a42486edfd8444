"""Optimizer construction from the ``optimizer`` config (mmcv 1.x semantics).

``optimizer = dict(type='AdamW', lr=1e-4, weight_decay=0.05, paramwise_cfg=..., constructor=...)``:
``constructor`` (default ``'DefaultOptimizerConstructor'``) and ``paramwise_cfg`` are
popped, the constructor is built from :data:`OPTIMIZER_BUILDERS`, and it builds the
torch optimizer (every ``torch.optim`` class is registered in :data:`OPTIMIZERS`
under its class name) from the remaining keys.
"""
from __future__ import annotations

import copy
import inspect
import json
import logging

import torch
from torch import nn

from mmdet.registry import OPTIMIZER_BUILDERS, OPTIMIZERS

from .registry import build_from_cfg

_logger = logging.getLogger("mmdet")

for _name, _obj in vars(torch.optim).items():
    if inspect.isclass(_obj) and issubclass(_obj, torch.optim.Optimizer) and _obj is not torch.optim.Optimizer:
        if OPTIMIZERS.get(_name) is None:
            OPTIMIZERS.register_module(name=_name, module=_obj)

NORM_MODULE_TYPES = (nn.modules.batchnorm._BatchNorm, nn.modules.instancenorm._InstanceNorm, nn.GroupNorm,
                     nn.LayerNorm)
"""Modules whose parameters ``norm_decay_mult`` applies to (mmcv's list)."""

_PARAMWISE_KEYS = {"custom_keys", "bias_lr_mult", "bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult",
                   "dcn_offset_lr_mult", "bypass_duplicate"}


def sort_custom_keys(custom_keys: dict) -> list[str]:
    """mmcv's matching order: alphabetical, then (stable) by length, longest first."""
    return sorted(sorted(custom_keys), key=len, reverse=True)


@OPTIMIZER_BUILDERS.register_module()
class DefaultOptimizerConstructor:
    """mmcv's default constructor.

    Without ``paramwise_cfg`` the optimizer gets ``model.parameters()`` as one group.
    With it, every parameter gets its own group (module tree walked depth-first,
    ``named_parameters(recurse=False)`` order; frozen parameters get a plain group):

    * ``custom_keys={key: dict(lr_mult=1., decay_mult=1.)}``: keys tried in
      :func:`sort_custom_keys` order; the first that is a substring of the full
      parameter name (``backbone.layers.0.norm1.weight``) sets
      ``lr = base_lr * lr_mult`` and ``weight_decay = base_wd * decay_mult`` and no
      other rule applies.
    * otherwise: ``bias_lr_mult`` (biases of non-norm modules), ``norm_decay_mult``
      (BN/IN/GN/LN params), ``dwconv_decay_mult`` (depthwise Conv2d),
      ``bias_decay_mult`` (other biases), all default 1.
    * ``bypass_duplicate=True`` skips (with a warning) parameters already placed in
      a group, e.g. shared weights.
    * ``dcn_offset_lr_mult`` is accepted but inert: this toolbox has no deformable
      convolution modules (mmcv ignores it as well when its DCN ops are absent).

    Args:
        optimizer_cfg: the optimizer dict minus ``constructor``/``paramwise_cfg``
            (``type``, ``lr``, ``weight_decay``, ...).
        paramwise_cfg: the rules above, or None.
    """

    def __init__(self, optimizer_cfg: dict, paramwise_cfg: dict | None = None):
        if not isinstance(optimizer_cfg, dict):
            raise TypeError(f"optimizer_cfg should be a dict, but got {type(optimizer_cfg).__name__}")
        self.optimizer_cfg = optimizer_cfg
        self.paramwise_cfg = {} if paramwise_cfg is None else paramwise_cfg
        self.base_lr = optimizer_cfg.get("lr", None)
        self.base_wd = optimizer_cfg.get("weight_decay", None)
        self._validate_cfg()

    def _validate_cfg(self) -> None:
        if not isinstance(self.paramwise_cfg, dict):
            raise TypeError(f"optimizer.paramwise_cfg should be None or a dict, but got "
                            f"{type(self.paramwise_cfg).__name__}")
        custom_keys = self.paramwise_cfg.get("custom_keys", {})
        if not isinstance(custom_keys, dict):
            raise TypeError(f"optimizer.paramwise_cfg.custom_keys should be a dict, but got "
                            f"{type(custom_keys).__name__}")
        for key, rule in custom_keys.items():
            if not isinstance(rule, dict):
                raise TypeError(f"optimizer.paramwise_cfg.custom_keys['{key}'] should be a dict such as "
                                f"dict(lr_mult=1., decay_mult=0.), but got {rule!r}")
        if self.paramwise_cfg and self.base_lr is None:
            raise ValueError("optimizer.lr is required when optimizer.paramwise_cfg is given")
        if self.base_wd is None:
            for key in ("bias_decay_mult", "norm_decay_mult", "dwconv_decay_mult"):
                if key in self.paramwise_cfg:
                    raise ValueError(f"optimizer.paramwise_cfg.{key} needs optimizer.weight_decay (base_wd), "
                                     f"which is not set")
        unknown = sorted(set(self.paramwise_cfg) - _PARAMWISE_KEYS - self.extra_paramwise_keys())
        if unknown:
            _logger.warning(f"optimizer.paramwise_cfg keys {unknown} are not used by {type(self).__name__} "
                            f"(known: {sorted(_PARAMWISE_KEYS | self.extra_paramwise_keys())}); "
                            f"set optimizer.constructor if they belong to another constructor")

    def extra_paramwise_keys(self) -> set[str]:
        """paramwise_cfg keys a subclass reads in addition to the default ones."""
        return set()

    def add_params(self, params: list[dict], module: nn.Module, prefix: str = "") -> None:
        """Append one param group per parameter of ``module`` (recursively) to ``params``."""
        custom_keys = self.paramwise_cfg.get("custom_keys", {})
        sorted_keys = sort_custom_keys(custom_keys)
        bias_lr_mult = self.paramwise_cfg.get("bias_lr_mult", 1.0)
        bias_decay_mult = self.paramwise_cfg.get("bias_decay_mult", 1.0)
        norm_decay_mult = self.paramwise_cfg.get("norm_decay_mult", 1.0)
        dwconv_decay_mult = self.paramwise_cfg.get("dwconv_decay_mult", 1.0)
        bypass_duplicate = self.paramwise_cfg.get("bypass_duplicate", False)

        is_norm = isinstance(module, NORM_MODULE_TYPES)
        is_dwconv = isinstance(module, nn.Conv2d) and module.in_channels == module.groups
        placed = {id(p) for group in params for p in group["params"]} if bypass_duplicate else set()

        for name, param in module.named_parameters(recurse=False):
            group: dict = {"params": [param]}
            if not param.requires_grad:
                params.append(group)
                continue
            full_name = f"{prefix}.{name}"
            if bypass_duplicate and id(param) in placed:
                _logger.warning(f"{full_name} is duplicate. It is skipped since bypass_duplicate=True")
                continue
            matched = next((key for key in sorted_keys if key in full_name), None)
            if matched is not None:
                group["lr"] = self.base_lr * custom_keys[matched].get("lr_mult", 1.0)
                if self.base_wd is not None:
                    group["weight_decay"] = self.base_wd * custom_keys[matched].get("decay_mult", 1.0)
            else:
                if name == "bias" and not is_norm:
                    group["lr"] = self.base_lr * bias_lr_mult
                if self.base_wd is not None:
                    if is_norm:
                        group["weight_decay"] = self.base_wd * norm_decay_mult
                    elif is_dwconv:
                        group["weight_decay"] = self.base_wd * dwconv_decay_mult
                    elif name == "bias":
                        group["weight_decay"] = self.base_wd * bias_decay_mult
            params.append(group)

        for child_name, child in module.named_children():
            self.add_params(params, child, prefix=f"{prefix}.{child_name}" if prefix else child_name)

    def __call__(self, model: nn.Module) -> torch.optim.Optimizer:
        if hasattr(model, "module"):  # DataParallel / DistributedDataParallel
            model = model.module
        optimizer_cfg = dict(self.optimizer_cfg)
        if not self.paramwise_cfg:
            optimizer_cfg["params"] = model.parameters()
        else:
            params: list[dict] = []
            self.add_params(params, model)
            optimizer_cfg["params"] = params
        return build_from_cfg(optimizer_cfg, OPTIMIZERS)


def vit_layer_id(name: str, num_max_layer: int, layer_sep: list[int] | None = None) -> int:
    """ViTDet's layer id of a parameter (full name as in ``model.named_parameters()``).

    ``backbone.cls_token|mask_token|pos_embed`` and ``backbone.patch_embed*`` -> 0;
    ``backbone.blocks.<i>.*`` -> i + 1; ``backbone.layers.<s>.RC.*`` -> layer_sep[s];
    ``backbone.layers.<s>.<NC>.<j>.*`` -> layer_sep[s] + j + 1; anything else
    (backbone norm, fpn1/fpn2, neck, heads) -> ``num_max_layer - 1``.
    """
    if name in ("backbone.cls_token", "backbone.mask_token", "backbone.pos_embed"):
        return 0
    if name.startswith("backbone.patch_embed"):
        return 0
    parts = name.split(".")
    if name.startswith("backbone.blocks"):
        return int(parts[2]) + 1
    if name.startswith("backbone.layers"):
        if layer_sep is None:
            raise KeyError(f"parameter {name} needs optimizer.paramwise_cfg.layer_sep (first layer id of each "
                           f"stage, e.g. layer_sep=[0, 1, 2] for ViTAE-S)")
        stage = int(parts[2])
        if parts[3] == "RC":
            return layer_sep[stage]
        return layer_sep[stage] + int(parts[4]) + 1
    return num_max_layer - 1


@OPTIMIZER_BUILDERS.register_module()
class LayerDecayOptimizerConstructor(DefaultOptimizerConstructor):
    """ViTDet's layer-wise lr decay (``paramwise_cfg=dict(num_layers, layer_decay_rate, [layer_sep], custom_keys)``).

    With ``L = num_layers + 2`` and ``id = vit_layer_id(name, L, layer_sep)``:
    ``lr = base_lr * layer_decay_rate ** (L - id - 1) * lr_mult``; weight decay 0 for
    1-D params, names ending ``.bias`` or containing ``pos_embed``, ``cls_token`` or
    ``rel_pos_``, else ``base_wd``. ``custom_keys`` (alphabetical order, first
    substring match) only contribute ``lr_mult`` (default 1) and a group-name
    suffix; their ``decay_mult`` is not read, exactly as in ViTDet. Frozen
    parameters are skipped. Parameters are grouped by name
    ``layer_<id>_<decay|no_decay>[_<key>]`` in order of first appearance; each group
    also carries ``param_names``, ``lr_scale`` and ``group_name``.
    """

    def extra_paramwise_keys(self) -> set[str]:
        return {"num_layers", "layer_decay_rate", "layer_sep"}

    def _validate_cfg(self) -> None:
        super()._validate_cfg()
        if self.paramwise_cfg:
            for key in ("num_layers", "layer_decay_rate"):
                if key not in self.paramwise_cfg:
                    raise KeyError(f"LayerDecayOptimizerConstructor needs optimizer.paramwise_cfg.{key} "
                                   f"(ViTDet: num_layers=12, layer_decay_rate=0.7)")
            if self.base_wd is None:
                raise ValueError("LayerDecayOptimizerConstructor needs optimizer.weight_decay")

    def add_params(self, params: list[dict], module: nn.Module, prefix: str = "") -> None:
        num_layers = self.paramwise_cfg["num_layers"] + 2
        decay_rate = self.paramwise_cfg["layer_decay_rate"]
        layer_sep = self.paramwise_cfg.get("layer_sep", None)
        custom_keys = self.paramwise_cfg.get("custom_keys", {})
        sorted_keys = sorted(custom_keys)

        groups: dict[str, dict] = {}
        for name, param in module.named_parameters(prefix=prefix):
            if not param.requires_grad:
                continue
            no_decay = (param.ndim == 1 or name.endswith(".bias") or "pos_embed" in name or "cls_token" in name
                        or "rel_pos_" in name)
            layer_id = vit_layer_id(name, num_layers, layer_sep)
            group_name = f"layer_{layer_id}_{'no_decay' if no_decay else 'decay'}"
            lr_mult = 1.0
            matched = next((key for key in sorted_keys if key in name), None)
            if matched is not None:
                lr_mult = custom_keys[matched].get("lr_mult", 1.0)
                group_name = f"{group_name}_{matched}"
            if group_name not in groups:
                scale = decay_rate ** (num_layers - layer_id - 1)
                groups[group_name] = {"weight_decay": 0.0 if no_decay else self.base_wd, "params": [],
                                      "param_names": [], "lr_scale": scale, "group_name": group_name,
                                      "lr": scale * self.base_lr * lr_mult}
            groups[group_name]["params"].append(param)
            groups[group_name]["param_names"].append(name)

        summary = {name: {k: v for k, v in g.items() if k != "params"} for name, g in groups.items()}
        _logger.info(f"Param groups = {json.dumps(summary, indent=2)}")
        params.extend(groups.values())


def build_optimizer_constructor(cfg: dict):
    """Build an optimizer constructor from ``dict(type=..., optimizer_cfg=..., paramwise_cfg=...)``."""
    return build_from_cfg(cfg, OPTIMIZER_BUILDERS)


def build_optimizer(model: nn.Module, cfg: dict) -> torch.optim.Optimizer:
    """Build the torch optimizer for ``model`` from the config's ``optimizer`` dict (not modified)."""
    optimizer_cfg = copy.deepcopy(dict(cfg))
    constructor_type = optimizer_cfg.pop("constructor", "DefaultOptimizerConstructor")
    paramwise_cfg = optimizer_cfg.pop("paramwise_cfg", None)
    constructor = build_optimizer_constructor(dict(type=constructor_type, optimizer_cfg=optimizer_cfg,
                                                   paramwise_cfg=paramwise_cfg))
    return constructor(model)
