"""Hooks with mmcv 1.x names; importing this package registers them in ``mmdet.registry.HOOKS``."""
from .checkpoint import CheckpointHook, find_latest_checkpoint
from .evaluation import DistEvalHook, EvalHook
from .hook import PRIORITIES, Hook, get_priority
from .iter_timer import IterTimerHook
from .logger import LoggerHook, TensorboardLoggerHook, TextLoggerHook
from .lr_updater import CyclicLrUpdaterHook, LrUpdaterHook, ParamUpdaterHook, build_lr_hook
from .misc import EmptyCacheHook, NumClassCheckHook, check_num_classes
from .momentum_updater import (CosineAnnealingMomentumUpdaterHook, CyclicMomentumUpdaterHook, MomentumUpdaterHook,
                               OneCycleMomentumUpdaterHook, StepMomentumUpdaterHook, build_momentum_hook)
from .optimizer import DistOptimizerHook, Fp16OptimizerHook, GradientCumulativeOptimizerHook, OptimizerHook
from .sampler_seed import DistSamplerSeedHook

__all__ = ["Hook", "PRIORITIES", "get_priority", "CheckpointHook", "find_latest_checkpoint", "EvalHook",
           "DistEvalHook", "IterTimerHook", "LoggerHook", "TextLoggerHook", "TensorboardLoggerHook",
           "ParamUpdaterHook", "LrUpdaterHook", "CyclicLrUpdaterHook", "build_lr_hook", "MomentumUpdaterHook",
           "StepMomentumUpdaterHook", "CosineAnnealingMomentumUpdaterHook", "CyclicMomentumUpdaterHook",
           "OneCycleMomentumUpdaterHook", "build_momentum_hook", "EmptyCacheHook", "NumClassCheckHook",
           "check_num_classes", "OptimizerHook", "Fp16OptimizerHook", "GradientCumulativeOptimizerHook",
           "DistOptimizerHook", "DistSamplerSeedHook"]
