"""Reading and writing checkpoints.

* :func:`load_checkpoint` reads mmcv-layout checkpoints (``{'meta', 'state_dict',
  'optimizer', ...}``) and plain state_dicts, applies the conversion registered
  for the model's class (each backbone registers the conversion of its official
  weights with :func:`register_checkpoint_converter`; this module knows none of
  them), loads non-strictly and reports missing / unexpected / shape-mismatched
  keys as a table.
* :func:`safe_torch_load` reads with ``weights_only=True`` plus an allow-list of
  the harmless types released checkpoints hold; any other pickled object is
  refused with a message naming it (unpickling runs code).
* :func:`save_checkpoint` writes atomically (temp file in the same directory,
  fsync, rename) so a crash never leaves a truncated file behind.
"""
from __future__ import annotations

import argparse
import logging
import os
import re
import tempfile
import time
from collections import OrderedDict
from typing import Callable, Mapping

import numpy as np
import torch
from torch import nn

CheckpointConverter = Callable[[Mapping, nn.Module, logging.Logger], "OrderedDict[str, torch.Tensor]"]
_CONVERTERS: dict[type, CheckpointConverter] = {}

UNSAFE_ENV = "MMDET_ALLOW_UNSAFE_CHECKPOINTS"


def register_checkpoint_converter(model_cls: type) -> Callable[[CheckpointConverter], CheckpointConverter]:
    """Register ``fn(checkpoint, model, logger) -> state_dict`` for ``model_cls`` (and its subclasses).

    ``checkpoint`` is the object read from the file (any nesting: ``state_dict``,
    ``state_dict_ema``, ``model`` ...); the function returns a state_dict whose keys
    are the model's own. :func:`load_checkpoint` then loads it non-strictly and reports.
    """
    def deco(fn: CheckpointConverter) -> CheckpointConverter:
        _CONVERTERS[model_cls] = fn
        return fn
    return deco


def get_checkpoint_converter(model: nn.Module) -> CheckpointConverter | None:
    for cls in type(model).__mro__:
        if cls in _CONVERTERS:
            return _CONVERTERS[cls]
    return None


def _safe_globals() -> list:
    allowed: list = [argparse.Namespace, np.dtype, np.ndarray, np.generic]
    try:  # numpy scalars / arrays as pickled by numpy >= 2 and < 2
        from numpy._core.multiarray import _reconstruct, scalar
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core.multiarray import _reconstruct, scalar
    allowed += [scalar, _reconstruct]
    allowed += [type(np.dtype(t)) for t in ("float64", "float32", "float16", "int64", "int32", "uint8", "bool")]
    return allowed


def safe_torch_load(filename: str, map_location="cpu", allow_unsafe: bool | None = None):
    """``torch.load`` with ``weights_only=True`` and an allow-list of harmless types.

    ``allow_unsafe=True`` (or the environment variable ``MMDET_ALLOW_UNSAFE_CHECKPOINTS=1``)
    falls back to full unpickling for a file you trust.
    """
    if not os.path.isfile(filename):
        raise FileNotFoundError(f"checkpoint file not found: {filename}")
    if allow_unsafe is None:
        allow_unsafe = os.environ.get(UNSAFE_ENV, "0") == "1"
    try:
        with torch.serialization.safe_globals(_safe_globals()):
            return torch.load(filename, map_location=map_location, weights_only=True)
    except Exception as e:  # noqa: BLE001 - re-raised with a clear message below
        if allow_unsafe:
            return torch.load(filename, map_location=map_location, weights_only=False)
        if isinstance(e, torch.serialization.pickle.UnpicklingError) or "weights_only" in str(e):
            m = re.search(r"(?:GLOBAL|global) ([\w.]+)", str(e))
            what = m.group(1) if m else "an object outside the allow-list"
            raise RuntimeError(
                f"refusing to unpickle {what} from checkpoint {filename}: unpickling runs code. If you trust this "
                f"file, set {UNSAFE_ENV}=1 (or pass allow_unsafe=True / --allow-unsafe-checkpoint)") from None
        raise RuntimeError(f"could not read checkpoint {filename}: {e}") from e


def extract_state_dict(checkpoint, prefer_ema: bool = False,
                       logger: logging.Logger | None = None) -> "OrderedDict[str, torch.Tensor]":
    """The state_dict inside a checkpoint, ``module.`` stripped.

    Priority: ``state_dict_ema`` (only with ``prefer_ema``: timm training output, which the official ViTAE / ViTDet
    loaders read first) > ``state_dict`` > ``model`` (MAE, Swin, Visformer releases) > the object itself.
    With a ``logger`` the chosen section is logged (``loading from state_dict_ema``).
    """
    if not isinstance(checkpoint, Mapping):
        raise RuntimeError(f"checkpoint holds a {type(checkpoint).__name__}, expected a dict / state_dict")
    if prefer_ema and isinstance(checkpoint.get("state_dict_ema"), Mapping):
        key = "state_dict_ema"
    elif "state_dict" in checkpoint:
        key = "state_dict"
    elif isinstance(checkpoint.get("model"), Mapping):
        key = "model"
    else:
        return strip_prefix(checkpoint, "module.")
    if logger is not None:
        logger.info(f"loading from {key}")
    return strip_prefix(checkpoint[key], "module.")


def strip_prefix(state_dict: Mapping, prefix: str) -> "OrderedDict[str, torch.Tensor]":
    """Drop ``prefix`` from every key that starts with it (e.g. ``module.`` written by DDP)."""
    return OrderedDict((k[len(prefix):] if k.startswith(prefix) else k, v) for k, v in state_dict.items())


def load_state_dict(model: nn.Module, state_dict: Mapping, strict: bool = False,
                    logger: logging.Logger | None = None) -> dict[str, list]:
    """Copy matching tensors into ``model``; report missing / unexpected / shape-mismatched keys.

    Returns ``{'missing': [...], 'unexpected': [...], 'size_mismatch': [(key, ckpt_shape, model_shape)]}``.
    With ``strict=True`` any of them raises ``RuntimeError`` carrying the same table.
    """
    logger = logger or logging.getLogger("mmdet")
    own = model.state_dict()
    to_load, mismatch = OrderedDict(), []
    for k, v in state_dict.items():
        if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape:
            mismatch.append((k, tuple(v.shape), tuple(own[k].shape)))
        else:
            to_load[k] = v
    result = model.load_state_dict(to_load, strict=False)
    report = {"missing": list(result.missing_keys), "unexpected": list(result.unexpected_keys),
              "size_mismatch": mismatch}
    table = format_load_report(report)
    if table:
        if strict:
            raise RuntimeError(f"strict checkpoint load into {type(model).__name__} failed:\n{table}")
        logger.warning(table)
    return report


def format_load_report(report: Mapping[str, list]) -> str:
    rows = []
    for k in report.get("missing", []):
        rows.append(("missing in checkpoint", k, ""))
    for k in report.get("unexpected", []):
        rows.append(("unexpected in checkpoint", k, ""))
    for k, c, m in report.get("size_mismatch", []):
        rows.append(("shape mismatch", k, f"checkpoint {list(c)} vs model {list(m)}"))
    if not rows:
        return ""
    w0 = max(len(r[0]) for r in rows)
    w1 = max(len(r[1]) for r in rows)
    lines = [f"checkpoint keys not loaded ({len(rows)}):", f"{'issue':<{w0}}  {'key':<{w1}}  detail"]
    lines += [f"{a:<{w0}}  {b:<{w1}}  {c}".rstrip() for a, b, c in rows]
    return "\n".join(lines)


def unwrap_model(model: nn.Module) -> nn.Module:
    """The module inside a ``DistributedDataParallel`` / ``DataParallel`` wrapper."""
    if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)):
        return model.module
    return model


def load_checkpoint(model: nn.Module, filename: str, map_location="cpu", strict: bool = False,
                    logger: logging.Logger | None = None, revise_keys=None, allow_unsafe: bool | None = None):
    """Load ``filename`` into ``model`` and return the checkpoint object.

    The conversion registered for ``type(model)`` (see :func:`register_checkpoint_converter`)
    turns official-layout checkpoints into the model's keys; without one the
    state_dict is taken from ``state_dict`` / ``model`` / the file itself with any
    ``module.`` prefix removed. ``revise_keys`` is a list of ``(regex, replacement)``
    applied to the keys afterwards (mmcv's argument). DDP wrappers are unwrapped.
    """
    logger = logger or logging.getLogger("mmdet")
    model = unwrap_model(model)
    checkpoint = safe_torch_load(filename, map_location=map_location, allow_unsafe=allow_unsafe)
    converter = get_checkpoint_converter(model)
    state_dict = converter(checkpoint, model, logger) if converter else extract_state_dict(checkpoint)
    for pattern, repl in revise_keys or []:
        state_dict = OrderedDict((re.sub(pattern, repl, k), v) for k, v in state_dict.items())
    logger.info(f"load checkpoint from {filename}")
    load_state_dict(model, state_dict, strict=strict, logger=logger)
    return checkpoint


def weights_to_cpu(state_dict: Mapping) -> "OrderedDict[str, torch.Tensor]":
    return OrderedDict((k, v.detach().cpu()) for k, v in state_dict.items())


def atomic_torch_save(obj, filename: str) -> None:
    """``torch.save`` to a temp file in the target directory, fsync, then rename over ``filename``.

    Errors (full disk, read-only directory) are raised as ``OSError`` naming the file,
    and the previous file at ``filename`` is left untouched.
    """
    dirname = os.path.dirname(os.path.abspath(filename))
    try:
        os.makedirs(dirname, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp_", suffix=".pth", dir=dirname)
    except OSError as e:
        raise OSError(e.errno, f"cannot write checkpoint {filename}: {e.strerror}; "
                      f"check that the work dir is writable and has free space") from e
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filename)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise OSError(e.errno, f"cannot write checkpoint {filename}: {e.strerror}; the previous checkpoint "
                          f"is unchanged. Free disk space or choose another --work-dir") from e
        raise


def save_checkpoint(model: nn.Module, filename: str, optimizer=None, meta: dict | None = None,
                    extra: dict | None = None) -> None:
    """Write an mmcv-1.x-layout checkpoint atomically.

    Layout: ``meta`` (``time``, ``mmdet_version`` and whatever the caller adds:
    epoch, iter, config, CLASSES ...), ``state_dict`` (CPU tensors, no ``module.``),
    ``optimizer`` (state_dict, or a dict of them) and ``extra`` entries (e.g.
    ``lr_scheduler``, ``grad_scaler``). Everything is plain data, so it loads with
    ``torch.load(weights_only=True)``.
    """
    from mmdet import __version__
    model = unwrap_model(model)
    meta = dict(meta or {})
    meta.setdefault("mmdet_version", __version__)
    meta["time"] = time.asctime()
    checkpoint = {"meta": meta, "state_dict": weights_to_cpu(model.state_dict())}
    if optimizer is not None:
        if isinstance(optimizer, dict):
            checkpoint["optimizer"] = {k: o.state_dict() for k, o in optimizer.items()}
        else:
            checkpoint["optimizer"] = optimizer.state_dict()
    checkpoint.update(extra or {})
    atomic_torch_save(checkpoint, filename)
