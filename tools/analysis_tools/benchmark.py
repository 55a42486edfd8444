"""Inference speed (images / s) of a detector checkpoint over the test dataloader (mmdetection 2.x
``tools/analysis_tools/benchmark.py``).

    python tools/analysis_tools/benchmark.py CONFIG CHECKPOINT [--max-iter 2000] [--log-interval 50]
        [--num-warmup 5] [--repeat-num 1] [--fuse-conv-bn] [--cfg-options k=v ...] [--launcher pytorch]

One image per iteration; the timer covers only ``model(return_loss=False, rescale=True, **data)`` (device
synchronised before and after), and the first ``--num-warmup`` iterations are left out. Runs on the GPU when there
is one, else on the CPU. ``fp16`` / ``amp`` in the config turn on autocast as in ``tools/test.py``.
"""
from __future__ import annotations

import argparse
import copy
import os.path as osp
import time

import torch


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmdet.engine import DictAction
    from mmdet.utils.cli import add_launcher_args, parse_args_with_dict_options
    parser = argparse.ArgumentParser(description="MMDet benchmark a model")
    parser.add_argument("config", help="test config file path")
    parser.add_argument("checkpoint", help="checkpoint file")
    parser.add_argument("--repeat-num", type=int, default=1,
                        help="number of repeated measurements (their mean is printed too)")
    parser.add_argument("--max-iter", type=int, default=2000, help="number of images to run, warm-up included")
    parser.add_argument("--log-interval", type=int, default=50, help="print the running fps every N images")
    parser.add_argument("--num-warmup", type=int, default=5, help="leading images left out of the timing")
    parser.add_argument("--fuse-conv-bn", action="store_true",
                        help="fold BatchNorm into the preceding conv (slightly faster inference)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override settings in the used config, KEY=VALUE pairs")
    add_launcher_args(parser)  # with --launcher pytorch each process measures its own shard
    args = parse_args_with_dict_options(parser, argv, "bad --cfg-options value")
    if args.num_warmup < 0 or args.max_iter <= args.num_warmup:
        parser.error(f"--max-iter ({args.max_iter}) must exceed --num-warmup ({args.num_warmup}) so that some "
                     f"images are timed")
    if args.repeat_num < 1 or args.log_interval < 1:
        parser.error("--repeat-num and --log-interval must be >= 1")
    return args


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model_and_loader(cfg, checkpoint: str, fuse: bool, distributed: bool, device: torch.device):
    """Eval-mode detector with the checkpoint loaded (optionally conv+BN fused) on ``device``, and the test
    dataloader with one image per batch."""
    from mmdet.apis import fuse_conv_bn
    from mmdet.datasets import build_dataloader, build_dataset
    from mmdet.engine.checkpoint import load_checkpoint
    from mmdet.models import build_detector
    from mmdet.utils.cli import prepare_test_config
    prepare_test_config(cfg)
    dataset = build_dataset(cfg.data.test)
    loader = build_dataloader(dataset, samples_per_gpu=1, workers_per_gpu=cfg.data.workers_per_gpu,
                              dist=distributed, shuffle=False)
    model = build_detector(cfg.model, test_cfg=cfg.get("test_cfg"))
    load_checkpoint(model, checkpoint, map_location="cpu")
    model.eval()
    if fuse:
        model = fuse_conv_bn(model)
    return model.to(device), loader


def measure_inference_speed(cfg, checkpoint: str, max_iter: int, log_interval: int, num_warmup: int = 5,
                            is_fuse_conv_bn: bool = False, distributed: bool = False) -> float:
    """Images per second over iterations ``num_warmup + 1 .. max_iter`` (fewer if the dataset is shorter)."""
    from mmdet.datasets import unwrap_batch
    from mmdet.engine.amp import autocast, inference_autocast_dtype
    device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    model, loader = build_model_and_loader(cfg, checkpoint, is_fuse_conv_bn, distributed, device)
    dtype = inference_autocast_dtype(cfg)
    pure_inf_time, timed, done = 0.0, 0, 0
    for i, batch in enumerate(loader):
        data = unwrap_batch(batch, device)
        _sync(device)
        start = time.perf_counter()
        with torch.no_grad(), autocast(device.type, dtype):
            model(return_loss=False, rescale=True, **data)
        _sync(device)
        elapsed = time.perf_counter() - start
        done = i + 1
        if i >= num_warmup:
            pure_inf_time += elapsed
            timed += 1
            if done % log_interval == 0:
                fps = timed / pure_inf_time
                print(f"Done image [{done:<3}/ {max_iter}], fps: {fps:.1f} img / s, "
                      f"times per image: {1000 / fps:.1f} ms / img", flush=True)
        if done == max_iter:
            break
    if timed == 0:
        raise ValueError(f"the test set has {done} images, not more than --num-warmup {num_warmup}: nothing timed")
    fps = timed / pure_inf_time
    print(f"Overall fps: {fps:.1f} img / s, times per image: {1000 / fps:.1f} ms / img "
          f"({timed} images timed)", flush=True)
    return fps


def repeat_measure_inference_speed(cfg, checkpoint: str, max_iter: int, log_interval: int, num_warmup: int = 5,
                                   is_fuse_conv_bn: bool = False, repeat_num: int = 1,
                                   distributed: bool = False) -> list[float]:
    """Run :func:`measure_inference_speed` ``repeat_num`` times; with several, print each fps and the mean."""
    fps_list = [measure_inference_speed(copy.deepcopy(cfg), checkpoint, max_iter, log_interval, num_warmup,
                                        is_fuse_conv_bn, distributed) for _ in range(repeat_num)]
    if repeat_num > 1:
        fps_rounded = [round(fps, 1) for fps in fps_list]
        ms_rounded = [round(1000 / fps, 1) for fps in fps_list]
        mean_fps = sum(fps_list) / len(fps_list)
        print(f"Overall fps: {fps_rounded}[{mean_fps:.1f}] img / s, times per image: "
              f"{ms_rounded}[{1000 / mean_fps:.1f}] ms / img", flush=True)
    return fps_list


def main(argv: list[str] | None = None) -> list[float]:
    args = parse_args(argv)
    from mmdet.engine.dist import init_dist
    from mmdet.utils.cli import fail, load_config
    cfg = load_config(args.config, args.cfg_options)
    if not osp.isfile(args.checkpoint):
        fail(f"checkpoint file not found: {args.checkpoint}")
    distributed = args.launcher != "none"
    if distributed:
        init_dist(args.launcher, **dict(cfg.get("dist_params") or {}))
    return repeat_measure_inference_speed(cfg, args.checkpoint, args.max_iter, args.log_interval, args.num_warmup,
                                          args.fuse_conv_bn, args.repeat_num, distributed)


if __name__ == "__main__":
    main()
