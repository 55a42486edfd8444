"""Train a detector (mmdetection 2.x command line).

    python tools/train.py CONFIG [--work-dir DIR] [--resume-from CKPT | --auto-resume] [--no-validate]
        [--gpu-id N] [--seed S] [--deterministic] [--cfg-options k=v ...] [--amp [fp16|bf16]]
        [--launcher {none,pytorch,slurm,mpi}]

Multi-GPU: ``tools/dist_train.sh CONFIG GPUS [args]`` (torchrun, ``--launcher pytorch``).
"""
from __future__ import annotations

import argparse
import copy
import os
import os.path as osp
import time
import warnings

import torch

from mmdet import __version__
from mmdet.apis import collect_env_info, init_random_seed, set_random_seed, train_detector
from mmdet.apis.train import get_git_hash
from mmdet.engine import DictAction
from mmdet.engine.dist import get_dist_info, init_dist
from mmdet.engine.hooks import check_num_classes
from mmdet.engine.runner import NonFiniteLossError
from mmdet.utils.cli import (add_launcher_args, fail, load_config, parse_args_with_dict_options,
                             resolve_deprecated_alias)
from mmdet.utils.logger import get_root_logger


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Train a detector")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--work-dir", help="the dir to save logs and models (default ./work_dirs/<config name>)")
    parser.add_argument("--resume-from", help="the checkpoint file to resume from")
    parser.add_argument("--auto-resume", action="store_true",
                        help="resume from the latest checkpoint in the work dir automatically")
    parser.add_argument("--no-validate", action="store_true",
                        help="whether not to evaluate the checkpoint during training")
    gpus = parser.add_mutually_exclusive_group()
    gpus.add_argument("--gpus", type=int, help="(deprecated, non-distributed training uses one GPU) number of gpus")
    gpus.add_argument("--gpu-ids", type=int, nargs="+",
                      help="(deprecated, non-distributed training uses one GPU) ids of gpus to use")
    gpus.add_argument("--gpu-id", type=int, default=0, help="id of the gpu for non-distributed training")
    parser.add_argument("--seed", type=int, default=None, help="random seed (default: drawn at random)")
    parser.add_argument("--diff-seed", action="store_true", help="use a different seed on each rank (seed + rank)")
    parser.add_argument("--deterministic", action="store_true",
                        help="whether to set deterministic options for CUDNN backend and torch kernels")
    parser.add_argument("--options", nargs="+", action=DictAction,
                        help="(deprecated, use --cfg-options) override config settings")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override settings in the used config, KEY=VALUE pairs, e.g. optimizer.lr=0.01 "
                             "data.samples_per_gpu=1 'lr_config.step=[8,11]'")
    add_launcher_args(parser)
    parser.add_argument("--amp", nargs="?", const="fp16", choices=["fp16", "bf16"],
                        help="mixed precision via torch.amp: fp16 (dynamic loss scaling, default) or bf16")
    parser.add_argument("--auto-scale-lr", action="store_true",
                        help="scale the lr by (GPUs x samples_per_gpu) / auto_scale_lr.base_batch_size")
    args = parse_args_with_dict_options(parser, argv, "bad --cfg-options value")
    resolve_deprecated_alias(parser, args, "options", "cfg-options")
    return args


def _scale_lr(cfg, num_gpus: int, logger) -> None:
    auto = cfg.get("auto_scale_lr")
    if not auto or "base_batch_size" not in auto:
        fail("--auto-scale-lr needs auto_scale_lr=dict(base_batch_size=N) in the config")
    batch = num_gpus * cfg.data.samples_per_gpu
    cfg.optimizer.lr = cfg.optimizer.lr * batch / auto["base_batch_size"]
    logger.info(f"LR scaled for batch size {batch} (base {auto['base_batch_size']}): lr = {cfg.optimizer.lr}")


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if cfg.get("cudnn_benchmark", False):
        torch.backends.cudnn.benchmark = True
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get("work_dir") is None:
        cfg.work_dir = osp.join("./work_dirs", osp.splitext(osp.basename(args.config))[0])
    if args.resume_from is not None:
        if not osp.isfile(args.resume_from):
            fail(f"checkpoint to resume from not found: {args.resume_from}")
        cfg.resume_from = args.resume_from
    if cfg.get("load_from") and not cfg.get("resume_from") and not osp.isfile(cfg.load_from):
        fail(f"load_from checkpoint not found: {cfg.load_from}")
    cfg.auto_resume = args.auto_resume
    if args.amp:
        cfg.amp = dict(dtype=args.amp)
    if args.gpus is not None or args.gpu_ids is not None:
        warnings.warn("--gpus / --gpu-ids are deprecated: non-distributed training uses one GPU "
                      "(use tools/dist_train.sh for several)")
    cfg.gpu_ids = [args.gpu_ids[0]] if args.gpu_ids else [0 if args.gpus is not None else args.gpu_id]

    distributed = args.launcher != "none"
    if distributed:
        init_dist(args.launcher, **dict(cfg.get("dist_params") or {}))
        rank, world_size = get_dist_info()
        cfg.gpu_ids = range(world_size)
    else:
        rank = 0

    os.makedirs(osp.abspath(cfg.work_dir), exist_ok=True)
    timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
    logger = get_root_logger(log_file=osp.join(cfg.work_dir, f"{timestamp}.log"), log_level=cfg.get("log_level", "INFO"))
    if args.auto_scale_lr:
        _scale_lr(cfg, len(cfg.gpu_ids), logger)

    env_info = collect_env_info()
    dash = "-" * 60
    logger.info(f"Environment info:\n{dash}\n{env_info}\n{dash}\n")
    logger.info(f"Distributed training: {distributed}")
    seed = init_random_seed(args.seed)
    seed = seed + rank if args.diff_seed else seed
    logger.info(f"Set random seed to {seed}, deterministic: {args.deterministic}")
    set_random_seed(seed, deterministic=args.deterministic)
    cfg.seed = seed
    if rank == 0:
        cfg.dump(osp.join(cfg.work_dir, osp.basename(args.config)))
    logger.info(f"Config:\n{cfg.pretty_text}")
    meta = dict(env_info=env_info, config=cfg.pretty_text, seed=seed, exp_name=osp.basename(args.config))

    from mmdet.datasets import build_dataset
    from mmdet.models import build_detector
    model = build_detector(cfg.model, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
    if hasattr(model, "init_weights"):
        model.init_weights()
    datasets = [build_dataset(cfg.data.train)]
    if len(cfg.workflow) == 2:
        val_cfg = copy.deepcopy(cfg.data.val)
        train_cfg = cfg.data.train
        val_cfg.pipeline = train_cfg.get("pipeline", train_cfg.get("dataset", {}).get("pipeline"))
        datasets.append(build_dataset(val_cfg))
    classes = tuple(datasets[0].CLASSES)
    if cfg.get("checkpoint_config") is not None:
        cfg.checkpoint_config.meta = dict(mmdet_version=__version__ + get_git_hash()[:7], CLASSES=classes)
    model.CLASSES = classes
    try:
        check_num_classes(model, datasets[0])
    except ValueError as e:
        fail(str(e))
    try:
        train_detector(model, datasets, cfg, distributed=distributed, validate=not args.no_validate,
                       timestamp=timestamp, meta=meta)
    except (NonFiniteLossError, OSError) as e:
        logger.error(str(e))
        fail(str(e))


if __name__ == "__main__":
    main()
