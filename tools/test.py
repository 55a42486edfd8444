"""Test (and evaluate) a detector checkpoint (mmdetection 2.x command line).

    python tools/test.py CONFIG CHECKPOINT [--out results.pkl] [--eval bbox segm] [--format-only]
        [--show] [--show-dir DIR] [--show-score-thr 0.3] [--eval-options k=v ...] [--cfg-options k=v ...]
        [--fuse-conv-bn] [--work-dir DIR] [--launcher pytorch --gpu-collect | --tmpdir DIR]

Multi-GPU: ``tools/dist_test.sh CONFIG CHECKPOINT GPUS [args]``.
"""
from __future__ import annotations

import argparse
import json
import os
import os.path as osp
import pickle
import time

import torch

from mmdet.apis import fuse_conv_bn, multi_gpu_test, single_gpu_test
from mmdet.engine import DictAction
from mmdet.engine.amp import autocast, inference_autocast_dtype
from mmdet.engine.checkpoint import load_checkpoint
from mmdet.engine.dist import get_dist_info, init_dist, process_device, wrap_distributed
from mmdet.utils.cli import (add_launcher_args, fail, load_config, parse_args_with_dict_options,
                             prepare_test_config, resolve_deprecated_alias)

#: evaluation-config keys that belong to the EvalHook, not to dataset.evaluate
_HOOK_ONLY_KEYS = ("interval", "tmpdir", "start", "gpu_collect", "save_best", "rule", "dynamic_intervals",
                   "by_epoch", "greater_keys", "less_keys", "out_dir", "broadcast_bn_buffer", "file_client_args")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Test (and eval) a model")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--work-dir", help="the directory to save the file containing evaluation metrics")
    parser.add_argument("--out", help="output result file in pickle format")
    parser.add_argument("--fuse-conv-bn", action="store_true",
                        help="fuse conv and bn, which slightly increases the inference speed")
    gpus = parser.add_mutually_exclusive_group()
    gpus.add_argument("--gpu-ids", type=int, nargs="+", help="(deprecated) ids of gpus to use; the first is used")
    gpus.add_argument("--gpu-id", type=int, default=0, help="id of the gpu for non-distributed testing")
    parser.add_argument("--format-only", action="store_true",
                        help="format the output results without evaluation (e.g. for a test-server submission)")
    parser.add_argument("--eval", type=str, nargs="+", help='evaluation metrics, e.g. "bbox", "segm"')
    parser.add_argument("--show", action="store_true", help="show results")
    parser.add_argument("--show-dir", help="directory where painted images will be saved")
    parser.add_argument("--show-score-thr", type=float, default=0.3, help="score threshold (default: 0.3)")
    parser.add_argument("--gpu-collect", action="store_true", help="whether to use gpu to collect results")
    parser.add_argument("--tmpdir", help="tmp directory used for collecting results from multiple workers")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override settings in the used config, KEY=VALUE pairs")
    parser.add_argument("--options", nargs="+", action=DictAction,
                        help="(deprecated, use --eval-options) custom options for evaluation")
    parser.add_argument("--eval-options", nargs="+", action=DictAction,
                        help="custom options for evaluation, e.g. classwise=True jsonfile_prefix=results/coco")
    add_launcher_args(parser)
    args = parse_args_with_dict_options(parser, argv, "bad KEY=VALUE option")
    resolve_deprecated_alias(parser, args, "options", "eval-options")
    if not (args.out or args.eval or args.format_only or args.show or args.show_dir):
        parser.error('specify at least one operation (save/eval/format/show the results) with "--out", "--eval", '
                     '"--format-only", "--show" or "--show-dir"')
    if args.eval and args.format_only:
        parser.error("--eval and --format-only cannot be both specified")
    if args.out is not None and not args.out.endswith((".pkl", ".pickle")):
        parser.error(f"--out must be a .pkl or .pickle file, got {args.out}")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        fail(f"checkpoint file not found: {args.checkpoint}")
    if cfg.get("cudnn_benchmark", False):
        torch.backends.cudnn.benchmark = True
    samples_per_gpu = prepare_test_config(cfg)
    from mmdet.datasets import build_dataloader, build_dataset
    cfg.gpu_ids = [args.gpu_ids[0]] if args.gpu_ids else [args.gpu_id]

    distributed = args.launcher != "none"
    if distributed:
        init_dist(args.launcher, **dict(cfg.get("dist_params") or {}))
    rank, _ = get_dist_info()
    if distributed and (args.show or args.show_dir):
        fail("--show / --show-dir need a single process (--launcher none)")
    timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
    if args.work_dir is not None and rank == 0:
        os.makedirs(osp.abspath(args.work_dir), exist_ok=True)

    dataset = build_dataset(cfg.data.test)
    data_loader = build_dataloader(dataset, samples_per_gpu=samples_per_gpu, workers_per_gpu=cfg.data.workers_per_gpu,
                                   dist=distributed, shuffle=False)
    from mmdet.models import build_detector
    model = build_detector(cfg.model, test_cfg=cfg.get("test_cfg"))
    checkpoint = load_checkpoint(model, args.checkpoint, map_location="cpu")
    model.eval()
    if args.fuse_conv_bn:
        model = fuse_conv_bn(model)
    meta = checkpoint.get("meta") or {}
    model.CLASSES = tuple(meta["CLASSES"]) if "CLASSES" in meta else dataset.CLASSES
    device = process_device(cfg.gpu_ids, distributed)
    model.to(device)

    with autocast(device.type, inference_autocast_dtype(cfg)):
        if distributed:
            model = wrap_distributed(model, device)
            outputs = multi_gpu_test(model, data_loader, args.tmpdir, args.gpu_collect)
        else:
            outputs = single_gpu_test(model, data_loader, args.show, args.show_dir, args.show_score_thr)

    if rank != 0:
        return
    if args.out:
        print(f"\nwriting results to {args.out}")
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        with open(args.out, "wb") as f:
            pickle.dump(outputs, f)
    eval_options = dict(args.eval_options or {})
    if args.format_only:
        dataset.format_results(outputs, **eval_options)
    if args.eval:
        eval_kwargs = {k: v for k, v in dict(cfg.get("evaluation") or {}).items() if k not in _HOOK_ONLY_KEYS}
        eval_kwargs.update(dict(metric=args.eval, **eval_options))
        metric = dataset.evaluate(outputs, **eval_kwargs)
        print(metric)
        if args.work_dir is not None:
            with open(osp.join(args.work_dir, f"eval_{timestamp}.json"), "w") as f:
                json.dump(dict(config=args.config, metric=metric), f, indent=4)


if __name__ == "__main__":
    main()
