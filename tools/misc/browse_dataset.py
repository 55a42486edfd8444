"""Draw the training pipeline's output (ground-truth boxes, masks, class names) for every training sample
(mmdetection 2.x ``tools/misc/browse_dataset.py``).

    python tools/misc/browse_dataset.py CONFIG --output-dir DIR [--not-show] [--show-interval 2]
        [--skip-type DefaultFormatBundle Normalize Collect] [--cfg-options k=v ...]

Writes ``DIR/<image stem>.png`` per sample. Pipeline steps named in ``--skip-type`` are dropped (by default the
formatting and normalisation steps, as mmdetection); when ``Normalize`` still runs, the image is de-normalised with
the ``img_norm_cfg`` it recorded, and formatted outputs (``DataContainer`` / ``(3, H, W)`` tensors) are unwrapped.
This build's OpenCV is headless: there is no window, so ``--output-dir`` is what produces pictures.
"""
from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

_DATASET_WRAPPERS = ("RepeatDataset", "ClassBalancedDataset")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmdet.engine import DictAction
    parser = argparse.ArgumentParser(description="Browse a dataset")
    parser.add_argument("config", help="train config file path")
    parser.add_argument("--skip-type", type=str, nargs="+", default=["DefaultFormatBundle", "Normalize", "Collect"],
                        help="pipeline step types to drop")
    parser.add_argument("--output-dir", default=None, type=str, help="directory where the PNGs are written")
    parser.add_argument("--not-show", default=False, action="store_true", help="do not try to display")
    parser.add_argument("--show-interval", type=float, default=2, help="seconds between displayed images")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override settings in the used config, KEY=VALUE pairs")
    args = parser.parse_args(argv)
    if args.output_dir is None:
        parser.error("nothing to do: this build cannot display images (opencv headless); pass --output-dir DIR")
    return args


def retrieve_data_cfg(config_path: str, skip_type: list[str], cfg_options: dict | None):
    """The config with ``data.train`` (inside dataset wrappers) stripped of the ``skip_type`` steps; returns the
    config and the innermost train dataset config."""
    from mmdet.engine import Config
    cfg = Config.fromfile(config_path)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    train = cfg.data.train
    while isinstance(train, dict) and train.get("type") in _DATASET_WRAPPERS:
        train = train["dataset"]
    if isinstance(train, (list, tuple)):
        raise ValueError("browse_dataset: data.train is a list of datasets; pick one with "
                         "--cfg-options data.train=... or browse each config separately")
    train["pipeline"] = [step for step in train["pipeline"] if step["type"] not in skip_type]
    return cfg, train


def _unwrap(value):
    """DataContainer -> its data; tensors -> numpy."""
    from mmdet.datasets import DataContainer
    value = value.data if isinstance(value, DataContainer) else value
    return value.numpy() if isinstance(value, torch.Tensor) else value


def sample_to_drawable(item: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None, str]:
    """A pipeline output -> (BGR uint8 image ``(H, W, 3)``, gt boxes ``(n, 4)``, labels ``(n,)``,
    masks ``(n, H, W)`` or None, source file name)."""
    img = _unwrap(item["img"])
    metas = _unwrap(item.get("img_metas", {})) or {}
    filename = item.get("filename") or metas.get("filename") or item.get("ori_filename") or "sample"
    norm = item.get("img_norm_cfg") or metas.get("img_norm_cfg")
    img = np.asarray(img)
    if img.ndim == 3 and img.shape[0] == 3 and img.shape[2] != 3:
        img = img.transpose(1, 2, 0)
    if norm is not None:
        img = img.astype(np.float32) * np.asarray(norm["std"], np.float32) + np.asarray(norm["mean"], np.float32)
        if norm.get("to_rgb", False):
            img = img[..., ::-1]
    img = np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))
    bboxes = np.asarray(_unwrap(item["gt_bboxes"]), dtype=np.float32).reshape(-1, 4)
    labels = np.asarray(_unwrap(item["gt_labels"]), dtype=np.int64).reshape(-1)
    masks = _unwrap(item.get("gt_masks"))
    if masks is not None:
        from mmdet.core.mask import mask2ndarray
        masks = mask2ndarray(masks).astype(bool)
        masks = masks[:, :img.shape[0], :img.shape[1]]
    return img, bboxes, labels, masks, str(filename)


def main(argv: list[str] | None = None) -> list[str]:
    args = parse_args(argv)
    from mmdet.core.visualization import imshow_det_bboxes
    from mmdet.datasets import build_dataset
    try:
        cfg, _ = retrieve_data_cfg(args.config, args.skip_type, args.cfg_options)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")
    if not args.not_show:
        warnings.warn("browse_dataset: no display in this build (opencv headless); writing to --output-dir only")
    dataset = build_dataset(cfg.data.train)
    written = []
    for item in tqdm(dataset, total=len(dataset), desc="browse", unit="img"):
        img, bboxes, labels, masks, filename = sample_to_drawable(item)
        out_file = os.path.join(args.output_dir, Path(filename).stem + ".png")
        imshow_det_bboxes(img, bboxes, labels, masks, class_names=dataset.CLASSES, bbox_color=dataset.PALETTE,
                          text_color=(200, 200, 200), mask_color=dataset.PALETTE, show=False, out_file=out_file)
        written.append(out_file)
    print(f"wrote {len(written)} images to {args.output_dir}")
    return written


if __name__ == "__main__":
    main()
