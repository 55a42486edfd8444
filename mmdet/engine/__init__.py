"""The engine: registry, config, checkpoint I/O, runner and hooks (plain PyTorch).

Runner and hook names are resolved on first access (PEP 562): those modules import
``mmdet.registry``, which itself imports ``mmdet.engine.registry``, so importing them
eagerly here would make ``import mmdet.registry`` circular.
"""
import importlib

from .amp import autocast, inference_autocast_dtype, optimizer_hook_config, resolve_dtype
from .checkpoint import (load_checkpoint, load_state_dict, register_checkpoint_converter, safe_torch_load,
                         save_checkpoint)
from .config import Config, ConfigDict, DictAction
from .dist import (all_reduce_dict, barrier, broadcast_object, collect_results_cpu, collect_results_gpu,
                   get_dist_info, init_dist, is_distributed, master_only)
from .log_buffer import LogBuffer
from .registry import Registry, build_from_cfg

_LAZY = {
    "runner": ["BaseRunner", "EpochBasedRunner", "IterBasedRunner", "IterLoader", "NonFiniteLossError",
               "build_runner", "unwrap_model", "get_rng_state", "set_rng_state"],
    "hooks": ["Hook", "CheckpointHook", "EvalHook", "DistEvalHook", "IterTimerHook", "LoggerHook",
              "TextLoggerHook", "TensorboardLoggerHook", "OptimizerHook", "Fp16OptimizerHook",
              "GradientCumulativeOptimizerHook", "DistOptimizerHook", "DistSamplerSeedHook", "NumClassCheckHook",
              "EmptyCacheHook", "LrUpdaterHook", "find_latest_checkpoint", "check_num_classes"],
}
_LAZY_NAMES = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str):
    if name in _LAZY_NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY_NAMES[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["Registry", "build_from_cfg", "load_checkpoint", "load_state_dict", "register_checkpoint_converter",
           "safe_torch_load", "save_checkpoint", "Config", "ConfigDict", "DictAction", "autocast",
           "inference_autocast_dtype", "optimizer_hook_config", "resolve_dtype", "all_reduce_dict", "barrier",
           "broadcast_object", "collect_results_cpu", "collect_results_gpu", "get_dist_info", "init_dist",
           "is_distributed", "master_only", "LogBuffer"] + list(_LAZY_NAMES)
