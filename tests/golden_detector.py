"""Helpers for the mmdetection 2.28 golden detector case (tests/data/golden/detectors/README.md)."""
from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

GOLDEN = Path(__file__).resolve().parent / "data" / "golden" / "detectors"
MEAN = np.array([123.675, 116.28, 103.53], np.float32)
STD = np.array([58.395, 57.12, 57.375], np.float32)


def q4_state_dict(path: Path = GOLDEN / "mask_rcnn_r50_fpn_weights_q4.pt") -> "OrderedDict[str, torch.Tensor]":
    """Dequantise the golden q4 weight file into an mmdet-2.x state_dict (keys in the stock order)."""
    ck = torch.load(path, map_location="cpu", weights_only=True)
    sd = OrderedDict()
    for key in ck["key_order"]:
        if key in ck["q4"]:
            entry = ck["q4"][key]
            numel = int(np.prod(entry["shape"]))
            codes = entry["codes"]
            q = torch.stack([codes & 15, codes >> 4], 1).reshape(-1)[:numel]
            sd[key] = ((q.float() - 7.5) * entry["scale"].float()).reshape(entry["shape"])
        else:
            value = ck["plain"][key]
            sd[key] = value.float() if value.is_floating_point() else value
    return sd


def input_from_resized(u8_bgr, pad_shape) -> torch.Tensor:
    """The README's bit-exact recipe: BGR->RGB, (x - mean) in float32, * (1/std) in float64, pad, CHW -> (1,3,H,W)."""
    u8_bgr = u8_bgr.numpy() if isinstance(u8_bgr, torch.Tensor) else u8_bgr
    x = u8_bgr[..., ::-1].astype(np.float32) - MEAN
    x = (x.astype(np.float64) * (1.0 / STD.astype(np.float64))).astype(np.float32)
    padded = np.zeros((pad_shape[0], pad_shape[1], 3), np.float32)
    padded[:x.shape[0], :x.shape[1]] = x
    return torch.from_numpy(np.ascontiguousarray(padded.transpose(2, 0, 1)))[None]
