"""Small building blocks shared by the transformer backbones.

Window helpers work on channels-last maps ``(B, H, W, C)``; padding is always
right/bottom with zeros, as every official backbone here does.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth per sample: zero whole samples with prob ``drop_prob``, rescale the rest by 1/keep."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (identity in eval mode or at rate 0)."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """``fc1 -> act -> drop -> fc2 -> drop`` on the last dimension (key names ``fc1``/``fc2`` as timm)."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 act_layer=nn.GELU, drop: float = 0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def pad_to_multiple(x: torch.Tensor, window: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
    """Zero-pad a ``(B, H, W, C)`` map on the right/bottom so H and W are multiples of the window.

    Returns the padded map and the padded sizes ``(Hp, Wp)``.
    """
    wh, ww = (window, window) if isinstance(window, int) else window
    _, h, w, _ = x.shape
    pad_b = (wh - h % wh) % wh
    pad_r = (ww - w % ww) % ww
    if pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x, h + pad_b, w + pad_r


def window_partition(x: torch.Tensor, window: int | tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` with H, W multiples of the window -> ``(B * nW, wh, ww, C)``, windows row-major."""
    wh, ww = (window, window) if isinstance(window, int) else window
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh, ww, c)


def window_reverse(windows: torch.Tensor, window: int | tuple[int, int], h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh, ww, C)`` -> ``(B, H, W, C)``."""
    wh, ww = (window, window) if isinstance(window, int) else window
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // wh) * (w // ww))
    x = windows.view(b, h // wh, w // ww, wh, ww, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window: int | tuple[int, int]) -> torch.Tensor:
    """The ``(wh*ww, wh*ww)`` int64 index into a ``((2wh-1)*(2ww-1), heads)`` bias table (Swin layout)."""
    wh, ww = (window, window) if isinstance(window, int) else window
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += wh - 1
    rel[:, :, 1] += ww - 1
    rel[:, :, 0] *= 2 * ww - 1
    return rel.sum(-1)


def resize_relative_position_table(table: torch.Tensor, new_len: int) -> torch.Tensor:
    """Bicubically resize a ``(L, heads)`` square relative-position table to ``(new_len, heads)``.

    (L, nH) -> (1, nH, S, S) -> bicubic (align_corners=False) -> (new_len, nH), as the official loaders do.
    """
    old_len, heads = table.shape
    s_old, s_new = int(round(old_len ** 0.5)), int(round(new_len ** 0.5))
    grid = table.permute(1, 0).reshape(1, heads, s_old, s_old)
    grid = F.interpolate(grid, size=(s_new, s_new), mode="bicubic", align_corners=False)
    return grid.reshape(heads, new_len).permute(1, 0).contiguous()
