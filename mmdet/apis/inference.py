"""Single-image inference: ``init_detector`` and ``inference_detector`` (mmdetection 2.x interface)."""
from __future__ import annotations

import copy
import os
from typing import Sequence

import numpy as np
import torch

from mmdet.datasets.collate import collate, unwrap_batch
from mmdet.datasets.pipelines import Compose
from mmdet.engine.checkpoint import load_checkpoint
from mmdet.engine.config import Config
from mmdet.models import build_detector


def init_detector(config, checkpoint: str | None = None, device: str = "cpu", cfg_options: dict | None = None):
    """Build a detector from a config (path or :class:`Config`) and optionally load a checkpoint.

    The class names come from the checkpoint's ``meta['CLASSES']`` when present,
    otherwise from the config's test dataset. Returns the model in eval mode on ``device``.
    """
    if isinstance(config, (str, os.PathLike)):
        config = Config.fromfile(str(config))
    elif not isinstance(config, Config):
        raise TypeError(f"config must be a file path or a Config, got {type(config).__name__}")
    if cfg_options is not None:
        config.merge_from_dict(cfg_options)
    config.model.pretrained = None
    if "backbone" in config.model and config.model.backbone.get("pretrained") is not None:
        config.model.backbone.pretrained = None
    config.model.train_cfg = None
    model = build_detector(config.model, test_cfg=config.get("test_cfg"))
    classes = None
    if checkpoint is not None:
        ckpt = load_checkpoint(model, checkpoint, map_location="cpu")
        classes = ckpt.get("meta", {}).get("CLASSES") if isinstance(ckpt, dict) else None
    if classes is None:
        classes = _classes_from_config(config)
    model.CLASSES = tuple(classes)
    model.cfg = config
    model.to(device)
    model.eval()
    return model


def _classes_from_config(config: Config) -> Sequence[str]:
    from mmdet.datasets import DATASETS, CustomDataset
    test_cfg = config.data.test
    if isinstance(test_cfg, (list, tuple)):
        test_cfg = test_cfg[0]
    if test_cfg.get("classes") is not None:
        return list(CustomDataset.get_classes(test_cfg["classes"]))
    dataset_cls = DATASETS.get(test_cfg["type"])
    return list(getattr(dataset_cls, "CLASSES", None) or [])


def _test_pipeline(cfg: Config, from_array: bool) -> Compose:
    pipeline = copy.deepcopy(cfg.data.test.pipeline)
    if from_array:
        pipeline[0] = dict(type="LoadImageFromWebcam")
    return Compose(pipeline)


def inference_detector(model, imgs):
    """Run ``model`` on one image or a list of images (file paths or BGR uint8 arrays).

    Returns the result of one image — ``(bbox_results, segm_results)`` for Mask
    R-CNN, i.e. per-class ``(n, 5)`` arrays and per-class lists of bool masks — or
    a list of them when ``imgs`` is a list or tuple.
    """
    is_batch = isinstance(imgs, (list, tuple))
    images = list(imgs) if is_batch else [imgs]
    if not images:
        return []
    from_array = isinstance(images[0], np.ndarray)
    pipeline = _test_pipeline(model.cfg, from_array)
    device = next(model.parameters()).device
    results = []
    for image in images:
        data = dict(img=image) if from_array else dict(img_info=dict(filename=str(image)), img_prefix=None)
        batch = unwrap_batch(collate([pipeline(data)], samples_per_gpu=1), device)
        with torch.no_grad():
            results.append(model(return_loss=False, rescale=True, **batch)[0])
    return results if is_batch else results[0]


def show_result_pyplot(model, img, result, score_thr: float = 0.3, title: str = "result", out_file: str | None = None):
    """Draw ``result`` on ``img`` (path or BGR array); save to ``out_file`` or return the drawn BGR array."""
    return model.show_result(img, result, score_thr=score_thr, show=False, out_file=out_file)
