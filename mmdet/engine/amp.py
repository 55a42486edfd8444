"""Mixed precision on native ``torch.amp`` (no apex).

Three config spellings switch it on; :func:`optimizer_hook_config` maps each to an
optimizer hook that owns the ``torch.amp.GradScaler`` and tells the runner which
autocast dtype to use:

* mmdetection 2.x: ``fp16 = dict(loss_scale=512.)`` (a number = static scale,
  ``'dynamic'``, or a dict of GradScaler kwargs such as ``dict(init_scale=512)``)
  -> ``Fp16OptimizerHook(**optimizer_config, **fp16)``.
* the apex spelling of the ViTAEv2/VSA/Swin-Visformer seeds:
  ``runner = dict(type='EpochBasedRunnerAmp', ...)`` +
  ``optimizer_config = dict(type='DistOptimizerHook', use_fp16=True, update_interval=...)``
  -> ``DistOptimizerHook`` with float16 autocast and dynamic loss scaling (apex O1 behaviour:
  matmul/conv in fp16, softmax/norm reductions in fp32).
* this toolbox: ``amp = dict(dtype='bf16')`` (or ``'fp16'``; optional ``loss_scale``), also set by
  ``tools/train.py --amp [fp16|bf16]``. bfloat16 needs no loss scaling and runs on CPU and GPU.
"""
from __future__ import annotations

import contextlib
import copy

import torch

_DTYPES = {"fp16": torch.float16, "float16": torch.float16, "half": torch.float16,
           "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}

#: optimizer hooks that accumulate gradients and take ``use_fp16`` / ``dtype``
_CUMULATIVE_HOOKS = ("DistOptimizerHook", "GradientCumulativeOptimizerHook")


def resolve_dtype(name: str | torch.dtype) -> torch.dtype:
    """``'fp16'``/``'float16'`` -> ``torch.float16``; ``'bf16'``/``'bfloat16'`` -> ``torch.bfloat16``."""
    if isinstance(name, torch.dtype):
        if name not in (torch.float16, torch.bfloat16):
            raise ValueError(f"AMP dtype must be float16 or bfloat16, got {name}")
        return name
    if name not in _DTYPES:
        raise ValueError(f"unknown AMP dtype {name!r}; use 'fp16' or 'bf16' (e.g. amp=dict(dtype='bf16'))")
    return _DTYPES[name]


def autocast(device_type: str, dtype: torch.dtype | None):
    """``torch.autocast(device_type, dtype)`` when ``dtype`` is set, else a no-op context."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device_type, dtype=dtype)


def build_grad_scaler(loss_scale, dtype: torch.dtype, device_type: str):
    """GradScaler for ``loss_scale`` (number, ``'dynamic'`` or GradScaler kwargs) and the static scale, if any.

    Returns ``(scaler, static_scale)``; ``static_scale`` is re-applied after every step
    (mmcv semantics: a numeric ``loss_scale`` never grows, overflowing steps are still skipped).
    bfloat16 has float32's exponent range, so its scaler is disabled.
    """
    if dtype == torch.bfloat16:
        return torch.amp.GradScaler(device_type, enabled=False), None
    if loss_scale == "dynamic":
        return torch.amp.GradScaler(device_type), None
    if isinstance(loss_scale, (int, float)) and not isinstance(loss_scale, bool):
        return torch.amp.GradScaler(device_type, init_scale=float(loss_scale)), float(loss_scale)
    if isinstance(loss_scale, dict):
        return torch.amp.GradScaler(device_type, **loss_scale), None
    raise ValueError(f"loss_scale must be a number, 'dynamic' or a dict of GradScaler kwargs "
                     f"(e.g. fp16=dict(loss_scale=dict(init_scale=512))), got {loss_scale!r}")


def optimizer_hook_config(cfg, distributed: bool = False) -> dict:
    """The optimizer hook config implied by ``cfg.optimizer_config``, ``cfg.fp16`` and ``cfg.amp``."""
    hook_cfg = copy.deepcopy(dict(cfg.get("optimizer_config") or {}))
    hook_type = hook_cfg.get("type")
    amp_cfg = cfg.get("amp")
    fp16_cfg = cfg.get("fp16")
    if amp_cfg is not None:
        amp_cfg = dict(amp_cfg)
        dtype = amp_cfg.pop("dtype", "fp16")
        resolve_dtype(dtype)
        loss_scale = amp_cfg.pop("loss_scale", "dynamic")
        if amp_cfg:
            raise KeyError(f"unknown keys in amp config: {sorted(amp_cfg)}; amp takes dtype and loss_scale")
        if hook_type in _CUMULATIVE_HOOKS:
            hook_cfg.update(use_fp16=True, dtype=dtype, loss_scale=loss_scale)
        else:
            hook_cfg.pop("type", None)
            hook_cfg.update(type="Fp16OptimizerHook", dtype=dtype, loss_scale=loss_scale, distributed=distributed)
    elif fp16_cfg is not None:
        if hook_type in _CUMULATIVE_HOOKS:
            hook_cfg.update(use_fp16=True, **dict(fp16_cfg))
        elif hook_type is None:
            hook_cfg.update(type="Fp16OptimizerHook", distributed=distributed, **dict(fp16_cfg))
    hook_cfg.setdefault("type", "OptimizerHook")
    return hook_cfg


def inference_autocast_dtype(cfg) -> torch.dtype | None:
    """Autocast dtype for testing: ``amp.dtype``, float16 when ``fp16`` is set (mmdet's ``wrap_fp16_model``), else None."""
    if cfg.get("amp") is not None:
        return resolve_dtype(cfg.get("amp").get("dtype", "fp16"))
    if cfg.get("fp16") is not None:
        return torch.float16
    return None
