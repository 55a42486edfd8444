"""Small tensor helpers of mmdetection 2.x ``mmdet.core.utils.misc``."""
from __future__ import annotations

from functools import partial
from typing import Callable, Sequence

import torch


def multi_apply(func: Callable, *args, **kwargs) -> tuple[list, ...]:
    """Call ``func`` on zipped ``args`` (one call per element, e.g. per level or per image) and transpose.

    ``func`` returns a tuple of ``k`` values; the result is a tuple of ``k`` lists, list ``j`` holding
    the ``j``-th value of every call. ``kwargs`` are passed to every call unchanged.
    """
    fn = partial(func, **kwargs) if kwargs else func
    return tuple(map(list, zip(*map(fn, *args))))


def unmap(data: torch.Tensor, count: int, inds: torch.Tensor, fill=0) -> torch.Tensor:
    """Scatter rows of ``data`` back into a tensor of ``count`` rows at the True positions of ``inds``.

    Args:
        data: ``(M, ...)`` values of the selected rows.
        count: number of rows ``N`` of the output.
        inds: ``(N,)`` bool (or 0/1) mask with exactly ``M`` True entries.
        fill: value of the rows not selected.

    Returns:
        ``(N, ...)`` tensor with ``data``'s dtype.
    """
    out = data.new_full((count,) + tuple(data.shape[1:]), fill)
    out[inds.bool()] = data
    return out


def select_single_mlvl(mlvl_tensors: Sequence[torch.Tensor], batch_id: int) -> list[torch.Tensor]:
    """The detached ``batch_id``-th image of every level: ``[(B, C, H_l, W_l)] -> [(C, H_l, W_l)]``."""
    return [t[batch_id].detach() for t in mlvl_tensors]
