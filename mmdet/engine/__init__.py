"""The engine: registry, config, checkpoint I/O, runner and hooks (plain PyTorch)."""
from .checkpoint import (load_checkpoint, load_state_dict, register_checkpoint_converter, safe_torch_load,
                         save_checkpoint)
from .registry import Registry, build_from_cfg

__all__ = ["Registry", "build_from_cfg", "load_checkpoint", "load_state_dict", "register_checkpoint_converter",
           "safe_torch_load", "save_checkpoint"]
