"""``train_detector`` and seeding (mmdetection 2.x ``mmdet/apis/train.py`` semantics).

Config keys read: ``data`` (samples_per_gpu, workers_per_gpu, val), ``gpu_ids``, ``seed``,
``runner`` (or legacy ``total_epochs``), ``optimizer``, ``optimizer_config`` / ``fp16`` / ``amp``
(see :mod:`mmdet.engine.amp`), ``lr_config``, ``momentum_config``, ``checkpoint_config``,
``log_config``, ``custom_hooks``, ``evaluation``, ``workflow``, ``work_dir``,
``find_unused_parameters``, ``syncBN``, ``resume_from`` / ``auto_resume`` / ``load_from``.
"""
from __future__ import annotations

import copy
import os
import platform
import random
import subprocess
import sys
import warnings

import numpy as np
import torch
from torch import nn

from mmdet.engine.amp import optimizer_hook_config
from mmdet.engine.dist import broadcast_object, process_device, wrap_distributed
from mmdet.engine.hooks import DistEvalHook, DistSamplerSeedHook, EvalHook, find_latest_checkpoint
from mmdet.engine.optimizer import build_optimizer
from mmdet.engine.runner import EpochBasedRunner, build_runner
from mmdet.utils.logger import get_root_logger


def init_random_seed(seed: int | None = None) -> int:
    """``seed`` if given, else a random one drawn on rank 0 and shared with every rank."""
    if seed is not None:
        return seed
    return int(broadcast_object(int(np.random.randint(2 ** 31))))


def set_random_seed(seed: int, deterministic: bool = False) -> None:
    """Seed python, numpy and torch (CPU + CUDA); ``deterministic`` also forces deterministic kernels."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    torch.cuda.manual_seed_all(seed)
    if deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)


def get_git_hash(digits: int = 7) -> str:
    """Short hash of the repository this package lives in, or 'unknown'."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=os.path.dirname(os.path.abspath(__file__)),
                             capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip()[:digits] if out.returncode == 0 and out.stdout.strip() else "unknown"


def collect_env_info() -> str:
    """Multi-line environment description (``env_info`` in checkpoints and log headers)."""
    import cv2
    import torchvision

    from mmdet import __version__
    lines = [f"sys.platform: {sys.platform}", f"Python: {sys.version.replace(chr(10), '')}",
             f"CUDA available: {torch.cuda.is_available()}"]
    if torch.cuda.is_available():
        names = {}
        for i in range(torch.cuda.device_count()):
            names.setdefault(torch.cuda.get_device_name(i), []).append(str(i))
        lines += [f"GPU {','.join(ids)}: {name}" for name, ids in names.items()]
        lines.append(f"CUDA runtime: {torch.version.cuda}")
    lines += [f"Platform: {platform.platform()}", f"PyTorch: {torch.__version__}",
              f"TorchVision: {torchvision.__version__}", f"OpenCV: {cv2.__version__}",
              f"NumPy: {np.__version__}", f"MMDetection: {__version__}+{get_git_hash()}"]
    return "\n".join(lines)


def _runner_config(cfg) -> dict:
    if cfg.get("runner") is None:
        if cfg.get("total_epochs") is None:
            raise KeyError("the config has neither runner=dict(type='EpochBasedRunner', max_epochs=N) nor "
                           "the legacy total_epochs")
        warnings.warn("config uses total_epochs; set runner=dict(type='EpochBasedRunner', max_epochs=N) instead")
        return dict(type="EpochBasedRunner", max_epochs=cfg.total_epochs)
    if cfg.get("total_epochs") is not None and cfg.runner.get("max_epochs") != cfg.total_epochs:
        raise ValueError(f"total_epochs={cfg.total_epochs} differs from runner.max_epochs="
                         f"{cfg.runner.get('max_epochs')}; remove total_epochs")
    return dict(cfg.runner)


def _prepare_model(model: nn.Module, cfg, distributed: bool, logger) -> tuple[nn.Module, torch.device]:
    """SyncBN conversion (``cfg.syncBN``), device placement; DDP wrapping happens after the optimizer exists."""
    if cfg.get("syncBN", False):
        if distributed and torch.cuda.is_available():
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
            logger.info("syncBN=True: BatchNorm layers converted to SyncBatchNorm")
        else:
            logger.warning("syncBN=True is ignored: SyncBatchNorm needs distributed training on GPUs")
    device = process_device(cfg.gpu_ids, distributed)
    return model.to(device), device


def train_detector(model: nn.Module, dataset, cfg, distributed: bool = False, validate: bool = False,
                   timestamp: str | None = None, meta: dict | None = None) -> None:
    """Build loaders, optimizer, runner and hooks from ``cfg``; resume / load; run the workflow."""
    from mmdet.datasets import build_dataloader, build_dataset

    logger = get_root_logger(log_level=cfg.get("log_level", "INFO"))
    datasets = dataset if isinstance(dataset, (list, tuple)) else [dataset]
    runner_cfg = _runner_config(cfg)
    data_loaders = [build_dataloader(ds, cfg.data.samples_per_gpu, cfg.data.workers_per_gpu,
                                     num_gpus=len(cfg.gpu_ids), dist=distributed, seed=cfg.get("seed"),
                                     runner_type=runner_cfg["type"])
                    for ds in datasets]

    model, device = _prepare_model(model, cfg, distributed, logger)
    optimizer = build_optimizer(model, cfg.optimizer)
    if distributed:
        model = wrap_distributed(model, device, find_unused_parameters=cfg.get("find_unused_parameters", False))

    runner = build_runner(runner_cfg, default_args=dict(model=model, optimizer=optimizer, work_dir=cfg.work_dir,
                                                        logger=logger, meta=meta))
    if timestamp is not None:
        runner.timestamp = timestamp
    runner.register_training_hooks(cfg.get("lr_config"), optimizer_hook_config(cfg, distributed),
                                   cfg.get("checkpoint_config"), cfg.get("log_config"), cfg.get("momentum_config"))
    if distributed and isinstance(runner, EpochBasedRunner):
        runner.register_hook(DistSamplerSeedHook())

    if validate:
        val_cfg = copy.deepcopy(cfg.data.val)
        val_samples_per_gpu = val_cfg.pop("samples_per_gpu", 1)
        if val_samples_per_gpu > 1:
            from mmdet.datasets import replace_ImageToTensor
            val_cfg.pipeline = replace_ImageToTensor(val_cfg.pipeline)
        val_dataset = build_dataset(val_cfg, dict(test_mode=True))
        val_loader = build_dataloader(val_dataset, samples_per_gpu=val_samples_per_gpu,
                                      workers_per_gpu=cfg.data.workers_per_gpu, dist=distributed, shuffle=False)
        eval_cfg = dict(cfg.get("evaluation") or {})
        eval_cfg["by_epoch"] = runner_cfg["type"] != "IterBasedRunner"
        eval_hook = DistEvalHook if distributed else EvalHook
        runner.register_hook(eval_hook(val_loader, **eval_cfg), priority="NORMAL")

    runner.register_custom_hooks(cfg.get("custom_hooks"))

    resume_from = cfg.get("resume_from")
    if resume_from is None and cfg.get("auto_resume"):
        resume_from = find_latest_checkpoint(cfg.work_dir)
        logger.info(f"auto-resume: {'from ' + resume_from if resume_from else 'no checkpoint in ' + cfg.work_dir}")
    if resume_from:
        runner.resume(resume_from)
    elif cfg.get("load_from"):
        runner.load_checkpoint(cfg.load_from)
    runner.run(data_loaders, cfg.workflow)
