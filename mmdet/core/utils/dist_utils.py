"""Distributed helpers of mmdetection 2.x ``mmdet.core.utils.dist_utils``."""
from __future__ import annotations

import torch
import torch.distributed as dist


def reduce_mean(tensor: torch.Tensor) -> torch.Tensor:
    """Mean of ``tensor`` over all ranks (a copy); ``tensor`` itself when not running distributed."""
    if not (dist.is_available() and dist.is_initialized()):
        return tensor
    tensor = tensor.clone()
    dist.all_reduce(tensor.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return tensor
