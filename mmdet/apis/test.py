"""Test loops: ``single_gpu_test`` / ``multi_gpu_test`` (mmdetection 2.x semantics) and ``fuse_conv_bn``.

Both return one entry per image, in dataset order: ``(bbox_results, segm_results)`` with the
masks RLE-encoded (``encode_mask_results``), or ``bbox_results`` alone for box-only models.
A tqdm progress bar (rank 0) counts images.
"""
from __future__ import annotations

import os

import cv2
import numpy as np
import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.utils.fusion import fuse_conv_bn_eval
from tqdm import tqdm

from mmdet.core.mask.utils import encode_mask_results
from mmdet.datasets.collate import unwrap_batch
from mmdet.engine.dist import collect_results_cpu, collect_results_gpu, get_dist_info
from mmdet.engine.checkpoint import unwrap_model


def tensor2imgs(images: torch.Tensor, mean, std, to_rgb: bool = True) -> list[np.ndarray]:
    """Undo the normalisation of a ``(B, 3, H, W)`` batch -> list of ``(H, W, 3)`` uint8 BGR images."""
    mean = np.asarray(mean, dtype=np.float32).reshape(1, 1, 3)
    std = np.asarray(std, dtype=np.float32).reshape(1, 1, 3)
    out = []
    for img in images.detach().float().cpu().numpy().transpose(0, 2, 3, 1):
        img = img * std + mean
        if to_rgb:
            img = img[..., ::-1]
        out.append(np.ascontiguousarray(img.clip(0, 255).astype(np.uint8)))
    return out


def _show_batch(model: nn.Module, inputs: dict, results: list, show: bool, out_dir: str | None,
                score_thr: float) -> None:
    """Draw each image's results on the de-normalised, un-padded, original-size image."""
    images, metas = inputs["img"][0], inputs["img_metas"][0]
    norm = metas[0]["img_norm_cfg"]
    for img, meta, result in zip(tensor2imgs(images, **norm), metas, results):
        h, w = meta["img_shape"][:2]
        ori_h, ori_w = meta["ori_shape"][:2]
        canvas = cv2.resize(img[:h, :w], (ori_w, ori_h))
        out_file = os.path.join(out_dir, meta["ori_filename"]) if out_dir else None
        unwrap_model(model).show_result(canvas, result, show=show, out_file=out_file, score_thr=score_thr)


def _encode(results: list) -> list:
    if results and isinstance(results[0], tuple):
        return [(bbox, encode_mask_results(segm)) for bbox, segm in results]
    return results


def _device(model: nn.Module) -> torch.device:
    param = next(model.parameters(), None)
    return param.device if param is not None else torch.device("cpu")


def single_gpu_test(model: nn.Module, data_loader, show: bool = False, out_dir: str | None = None,
                    show_score_thr: float = 0.3) -> list:
    """Run ``model(return_loss=False, rescale=True)`` over ``data_loader``; optionally draw the results."""
    model.eval()
    device = _device(model)
    results = []
    with tqdm(total=len(data_loader.dataset), desc="test", unit="img", dynamic_ncols=True) as bar:
        for batch in data_loader:
            inputs = unwrap_batch(batch, device)
            with torch.no_grad():
                result = model(return_loss=False, rescale=True, **inputs)
            if show or out_dir:
                _show_batch(model, inputs, result, show, out_dir, show_score_thr)
            results.extend(_encode(result))
            bar.update(len(result))
    return results


def multi_gpu_test(model: nn.Module, data_loader, tmpdir: str | None = None, gpu_collect: bool = False):
    """Each rank tests its shard of a distributed (non-shuffled) loader; rank 0 returns all results, others None."""
    model.eval()
    device = _device(model)
    rank, world_size = get_dist_info()
    results = []
    with tqdm(total=len(data_loader.dataset), desc="test", unit="img", dynamic_ncols=True,
              disable=rank != 0) as bar:
        for batch in data_loader:
            inputs = unwrap_batch(batch, device)
            with torch.no_grad():
                result = model(return_loss=False, rescale=True, **inputs)
            results.extend(_encode(result))
            bar.update(min(len(result) * world_size, bar.total - bar.n))
    if gpu_collect:
        return collect_results_gpu(results, len(data_loader.dataset))
    return collect_results_cpu(results, len(data_loader.dataset), tmpdir)


def fuse_conv_bn(module: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a Conv2d (in child order) into the conv; the BN becomes Identity.

    Call on a model in eval mode (uses the running statistics).
    """
    last_conv_name, last_conv = None, None
    for name, child in module.named_children():
        if isinstance(child, _BatchNorm) and last_conv is not None:
            module._modules[last_conv_name] = fuse_conv_bn_eval(last_conv, child)
            module._modules[name] = nn.Identity()
            last_conv = None
        elif isinstance(child, nn.Conv2d):
            last_conv_name, last_conv = name, child
        else:
            fuse_conv_bn(child)
    return module
