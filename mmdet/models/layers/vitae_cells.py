"""Building blocks shared by the ViTAEv2 and ViTAEv2+VSA detection backbones.

Layout conventions (one per boundary, so every reshape is explicit):

* images and conv branches (PRM, PCM, CPE) are NCHW;
* token maps between and inside cells are channels-last ``(B, H, W, C)``, which is
  the official ``(B, N, C)`` token layout with the row-major token index unflattened.

Pieces, with the official state_dict names they produce:

* :class:`PRM` (``PRM.convs.j.0``): dilated strided convs + GELU, concatenated dilation-major.
* :func:`build_pcm` (``PCM.0 ... PCM.6``): conv-BN-SiLU-conv-BN-SiLU-conv side branch.
* :class:`TokenAttention` (``qkv``, ``proj``): multi-head attention over all tokens or over
  non-overlapping windows (zero padding AFTER the norm, top/left get the floor), optional
  T2T value skip; computed with ``F.scaled_dot_product_attention``.
* :class:`VSAWindowAttention` (``relative_position_bias_table``, ``relative_position_index``,
  ``sampling_offsets.2``, ``sampling_scales.2``, ``qkv``, ``proj``): varied-size window attention;
  keys/values are resampled with ``F.grid_sample(bilinear, zeros, align_corners=True)``
  and the relative-position bias enters SDPA as an additive float mask.
* :class:`TokenBlock`, :class:`ReductionCell`, :class:`NormalCell`, :class:`ViTAEStage`: cells.
* :class:`ViTAEv2Base`: forward / out_indices / freezing / checkpointing / init / loading shared
  by both backbones; :func:`convert_official_vitae_checkpoint` reads the official checkpoints.
"""
from __future__ import annotations

import functools
import logging
import math
from collections import OrderedDict
from types import SimpleNamespace
from typing import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from mmdet.engine.checkpoint import extract_state_dict

from .transformer import (DropPath, Mlp, TransformerBackbone, WindowAttentionBase, adapt_relative_position_entries,
                          attention_with_bias, init_linear_and_norm, unwrap_moby_encoder, window_partition)
from .vitdet_blocks import checkpoint_block

# --------------------------------------------------------------------------- argument helpers


def per_stage(value, stages: int, name: str) -> list:
    """Official rule: a value that is not a list/tuple is repeated once per stage."""
    if isinstance(value, (list, tuple)):
        if len(value) < stages:
            raise ValueError(f"{name} has {len(value)} entries but stages={stages}; give one value per stage")
        return list(value)
    return [value] * stages


#: the per-stage constructor arguments shared by ViTAEv2 and ViTAEv2_VSA
STAGE_ARG_NAMES = ("embed_dims", "token_dims", "downsample_ratios", "kernel_size", "RC_heads", "NC_heads",
                   "dilations", "RC_op", "RC_tokens_type", "NC_tokens_type", "RC_group", "NC_group", "NC_depth")


def expand_stage_args(owner: str, stages: int, allowed_token_types: Sequence[str], hint: str,
                      arguments: Mapping) -> SimpleNamespace:
    """The official per-stage expansion of the ViTAEv2 / ViTAEv2_VSA constructor arguments.

    ``arguments`` holds (at least) the :data:`STAGE_ARG_NAMES` entries, e.g. the constructor's ``locals()``.
    ``token_dims`` given as a scalar ``t`` becomes ``[t * 2**i]``; a flat ``dilations`` list is one stage's
    dilations, repeated; every other value goes through :func:`per_stage`. ``RC_tokens_type`` /
    ``NC_tokens_type`` entries of the used stages must be in ``allowed_token_types`` (else a ValueError naming
    the entry, ending with ``hint``). Returns the expanded lists as attributes named like the arguments.
    """
    values = {name: arguments[name] for name in STAGE_ARG_NAMES}
    token_dims = values["token_dims"]
    if not isinstance(token_dims, (list, tuple)):
        values["token_dims"] = [token_dims * 2 ** i for i in range(stages)]
    dilations = values["dilations"]
    if isinstance(dilations, (list, tuple)) and dilations and not isinstance(dilations[0], (list, tuple)):
        values["dilations"] = [dilations] * stages
    expanded = SimpleNamespace(**{name: per_stage(value, stages, name) for name, value in values.items()})
    for name in ("RC_tokens_type", "NC_tokens_type"):
        for token_type in getattr(expanded, name)[:stages]:
            if token_type not in allowed_token_types:
                raise ValueError(f"{owner}: {name} {token_type!r} is not supported; {hint}")
    return expanded


def stage_drop_path_rates(drop_path_rate: float, depths: Sequence[int]) -> list[list[float]]:
    """Per-stage stochastic-depth rates with the official slicing quirk.

    ``dpr = linspace(0, rate, sum(depths))``; stage ``i`` takes ``dpr[s_i : s_i + depths[i]]``
    where ``s_i = depths[i - 1]`` (the PREVIOUS stage's depth, not a cumulative sum; ``s_0 = 0``).
    """
    dpr = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
    rates = []
    for i, depth in enumerate(depths):
        start = depths[i - 1] if i > 0 else 0
        rates.append(dpr[start:start + depth])
    return rates


def floor_split_padding(size: int, window: int) -> tuple[int, int]:
    """Zero padding ``(before, after)`` that makes ``size`` a multiple of ``window``; before = floor(total / 2)."""
    total = (window - size % window) % window
    return total // 2, total - total // 2


def nhwc_to_nchw(x: torch.Tensor) -> torch.Tensor:
    """``(B, H, W, C)`` -> ``(B, C, H, W)`` view (channels-last memory, no copy)."""
    return x.permute(0, 3, 1, 2)


def nchw_to_nhwc(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, H, W)`` -> ``(B, H, W, C)`` view (no copy)."""
    return x.permute(0, 2, 3, 1)


# --------------------------------------------------------------------------- conv branches


class PRM(nn.Module):
    """Pyramid reduction module: ``len(dilations)`` strided dilated convs (+GELU), concatenated.

    Conv ``j``: ``Conv2d(in_chans, embed_dim, kernel_size, stride=downsample_ratio,
    padding=ceil(((k-1)*d_j + 1 - ds) / 2) (+1 if extra_padding), dilation=d_j)``.

    Args:
        op: ``'cat'`` (output channel ``j * embed_dim + e``, dilation-major) or ``'sum'``.
        extra_padding: the VSA quirk ``padding += 1`` when the construction-time image size
            is not divisible by the ratio.

    Shape: ``(B, in_chans, H, W)`` -> ``(B, H // ds, W // ds, out_chans)`` (channels-last).
    """

    def __init__(self, kernel_size: int, downsample_ratio: int, dilations: Sequence[int], in_chans: int,
                 embed_dim: int, op: str = "cat", extra_padding: bool = False):
        super().__init__()
        if op not in ("cat", "sum"):
            raise ValueError(f"RC_op must be 'cat' or 'sum', got {op!r}")
        self.op = op
        self.out_chans = embed_dim * len(dilations) if op == "cat" else embed_dim
        convs = []
        for d in dilations:
            padding = math.ceil(((kernel_size - 1) * d + 1 - downsample_ratio) / 2) + int(extra_padding)
            convs.append(nn.Sequential(
                nn.Conv2d(in_chans, embed_dim, kernel_size, stride=downsample_ratio, padding=padding, dilation=d),
                nn.GELU()))
        self.convs = nn.ModuleList(convs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [conv(x) for conv in self.convs]
        y = torch.cat(outs, dim=1) if self.op == "cat" else torch.stack(outs, dim=0).sum(0)
        return nchw_to_nhwc(y)


def build_pcm(channels: Sequence[int], strides: Sequence[int], groups: int) -> nn.Sequential:
    """Parallel convolution module: ``Conv-BN-SiLU-Conv-BN-SiLU-Conv`` (3x3, padding 1, bias, ``groups``).

    ``channels = (c_in, c_1, c_2, c_out)`` are the widths before/after each conv (reduction
    cell: in, embed, embed, token; normal cell: dim, hidden, dim, dim). Keys ``0`` / ``3`` / ``6``
    are the convs, ``1`` / ``4`` the BatchNorms. Shape NCHW -> NCHW, spatially divided by ``prod(strides)``.
    """
    c_in, c1, c2, c_out = channels
    s0, s1, s2 = strides
    return nn.Sequential(
        nn.Conv2d(c_in, c1, 3, s0, 1, groups=groups), nn.BatchNorm2d(c1), nn.SiLU(),
        nn.Conv2d(c1, c2, 3, s1, 1, groups=groups), nn.BatchNorm2d(c2), nn.SiLU(),
        nn.Conv2d(c2, c_out, 3, s2, 1, groups=groups))


def build_cpe(dim: int, window_size: int) -> nn.Conv2d:
    """Conditional position encoding: depthwise ``(ws // 2 * 2 + 1)``-square conv with bias (NCHW -> NCHW)."""
    return nn.Conv2d(dim, dim, window_size // 2 * 2 + 1, 1, window_size // 2, groups=dim, bias=True)


def pcm_strides(downsample_ratio: int) -> list[int]:
    """PCM strides realising the RC ratio: 4 -> [2, 2, 1], 2 -> [2, 1, 1], 1 -> [1, 1, 1]."""
    table = {4: [2, 2, 1], 2: [2, 1, 1], 1: [1, 1, 1]}
    if downsample_ratio not in table:
        raise ValueError(f"downsample_ratios entries must be 1, 2 or 4, got {downsample_ratio}")
    return table[downsample_ratio]


# --------------------------------------------------------------------------- attention


def window_grid(x: torch.Tensor, window: int) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Zero-pad a ``(B, H, W, C)`` map to window multiples with the floor on top/left.

    Returns the padded map and ``(top, left, nh, nw)`` (window counts of the padded map).
    """
    _, h, w, _ = x.shape
    top, bottom = floor_split_padding(h, window)
    left, right = floor_split_padding(w, window)
    if top or bottom or left or right:
        x = F.pad(x, (0, 0, left, right, top, bottom))
    return x, (top, left, (h + top + bottom) // window, (w + left + right) // window)


def windows_to_heads(x: torch.Tensor, window: int, nh: int, nw: int, heads: int) -> torch.Tensor:
    """``(B, Hp, Wp, heads * hd)`` -> ``(B * nh * nw, heads, window**2, hd)``.

    Windows and the tokens inside them are row-major.
    """
    b = x.shape[0]
    x = x.view(b, nh, window, nw, window, heads, -1).permute(0, 1, 3, 5, 2, 4, 6)
    return x.reshape(b * nh * nw, heads, window * window, x.shape[-1])


def heads_to_windows(x: torch.Tensor, window: int, b: int, nh: int, nw: int) -> torch.Tensor:
    """Inverse of :func:`windows_to_heads`.

    ``(B * nh * nw, heads, ws * ws, hd)`` -> ``(B, Hp, Wp, heads * hd)``.
    """
    heads, hd = x.shape[1], x.shape[3]
    x = x.view(b, nh, nw, heads, window, window, hd).permute(0, 1, 4, 2, 5, 3, 6)
    return x.reshape(b, nh * window, nw * window, heads * hd)


class TokenAttention(nn.Module):
    """Multi-head self-attention of the ViTAEv2 cells, global or in non-overlapping windows.

    ``qkv = Linear(in_dim, 3 * out_dim)`` (channel layout ``(3, heads, head_dim)``),
    ``proj = Linear(out_dim, out_dim)``; logits scaled by ``qk_scale or (out_dim // heads) ** -0.5``,
    no bias and no mask. Windowed: the (already normalised) map is zero-padded to window
    multiples with top/left = floor, so padded tokens join as keys/values equal to the qkv
    bias; outputs are cropped back. ``value_skip`` (the T2T reduction-cell attention) returns
    ``v + proj(attention)`` with ``v`` merged over heads.

    Shape: ``(B, H, W, in_dim)`` -> ``(B, H, W, out_dim)``.
    """

    def __init__(self, in_dim: int, out_dim: int, num_heads: int, qkv_bias: bool = True, qk_scale=None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, window_size: int | None = None,
                 value_skip: bool = False):
        super().__init__()
        if out_dim % num_heads:
            raise ValueError(f"attention width {out_dim} is not divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        self.out_dim = out_dim
        self.scale = qk_scale or (out_dim // num_heads) ** -0.5
        self.window_size = window_size
        self.value_skip = value_skip
        self.attn_drop = float(attn_drop)
        self.qkv = nn.Linear(in_dim, out_dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(out_dim, out_dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def extra_repr(self) -> str:
        where = f"window={self.window_size}" if self.window_size else "global"
        return f"heads={self.num_heads}, {where}, scale={self.scale:.4g}, value_skip={self.value_skip}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, c = x.shape
        ws = self.window_size
        if ws:
            # partition the C-channel input, not the 3C-channel projection: qkv is per token, so this is the
            # same computation with a third of the copying (padded tokens project to the qkv bias either way)
            x, (top, left, nh, nw) = window_grid(x, ws)
            tokens = window_partition(x, ws).view(-1, ws * ws, c)
        else:
            tokens = x.reshape(b, h * w, c)
        q, k, v = self.qkv(tokens).unflatten(-1, (3, self.num_heads, -1)).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0,
                                             scale=self.scale)

        def to_map(t: torch.Tensor) -> torch.Tensor:  # (B', heads, n, hd) -> (B, H, W, out_dim)
            if ws:
                return heads_to_windows(t, ws, b, nh, nw)[:, top:top + h, left:left + w]
            return t.transpose(1, 2).reshape(b, h, w, self.out_dim)

        out = self.proj_drop(self.proj(to_map(out)))
        return to_map(v) + out if self.value_skip else out


@functools.lru_cache(maxsize=32)
def _vsa_reference_grids(hp: int, wp: int, window: int, device: torch.device, dtype: torch.dtype):
    """Sampling lattice of the padded ``hp x wp`` map, built once per size.

    Returns ``base`` ``(1, 2, nh, ws, nw, ws)``: normalised pixel centres (channel 0 = x from
    ``linspace(-1, 1, wp)``, channel 1 = y), i.e. window centre + in-window offset; and
    ``local`` ``(1, 2, 1, ws, 1, ws)``: the in-window offsets about the window centre.
    """
    nh, nw = hp // window, wp // window
    xs = torch.linspace(-1, 1, wp, device=device, dtype=dtype)
    ys = torch.linspace(-1, 1, hp, device=device, dtype=dtype)
    base = torch.stack((xs.view(1, wp).expand(hp, wp), ys.view(hp, 1).expand(hp, wp)))
    base = base.reshape(1, 2, nh, window, nw, window)
    steps = torch.arange(window, device=device, dtype=dtype)
    local_x = steps * 2 / (wp - 1)
    local_y = steps * 2 / (hp - 1)
    local_x = local_x - local_x.mean()
    local_y = local_y - local_y.mean()
    local = torch.stack((local_x.view(1, window).expand(window, window),
                         local_y.view(window, 1).expand(window, window)))
    return base, local.reshape(1, 2, 1, window, 1, window)


class VSAWindowAttention(WindowAttentionBase):
    """Varied-size window attention (detection variant of ViTAEv2*+VSA).

    Per window and head a 1x1 conv on the window-averaged input predicts an offset and a
    scale for x and y; the ``ws x ws`` key/value lattice is scaled about the window centre by
    ``(1 + scale)`` and shifted by ``offset / (h // ws, w // ws)`` (x divided by the ROW-window
    count, as upstream; a count of 0, i.e. a map side under ``ws``, is taken as 1 instead of
    dividing by zero). Keys and values are bilinearly resampled there (``grid_sample``, zeros
    outside, ``align_corners=True``) from q/k/v computed on the unpadded map and zero-padded;
    queries stay on the regular lattice. Logits = ``q k^T * (in_dim // heads) ** -0.5 + B``
    with the relative-position bias ``B`` (table and index of :class:`WindowAttentionBase`); ``attn_drop`` is
    accepted for config compatibility and not applied (upstream never applies it).

    Shape: ``(B, H, W, dim)`` -> ``(B, H, W, out_dim)``.
    """

    def __init__(self, dim: int, num_heads: int, out_dim: int | None = None, window_size: int = 7,
                 qkv_bias: bool = True, qk_scale=None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        out_dim = out_dim or dim
        if out_dim % num_heads:
            raise ValueError(f"VSA attention width {out_dim} is not divisible by num_heads={num_heads}")
        # the scale comes from the INPUT width, as upstream; attention dropout is never applied upstream
        super().__init__(window_size, num_heads, qk_scale or (dim // num_heads) ** -0.5)
        self.out_dim = out_dim
        self.sampling_offsets = nn.Sequential(nn.AvgPool2d(window_size, window_size), nn.LeakyReLU(),
                                              nn.Conv2d(dim, num_heads * 2, 1))
        self.sampling_scales = nn.Sequential(nn.AvgPool2d(window_size, window_size), nn.LeakyReLU(),
                                             nn.Conv2d(dim, num_heads * 2, 1))
        self.qkv = nn.Conv2d(dim, out_dim * 3, 1, bias=qkv_bias)
        self.proj = nn.Conv2d(out_dim, out_dim, 1)
        self.proj_drop = nn.Dropout(proj_drop)

    def extra_repr(self) -> str:
        return f"heads={self.num_heads}, window={self.window_size}, scale={self.scale:.4g}"

    @staticmethod
    def _pointwise(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
        """A 1x1 ``Conv2d`` applied to a channels-last map (same weights, a plain GEMM)."""
        return F.linear(x, conv.weight.flatten(1), conv.bias)

    def sampling_grid(self, x_padded: torch.Tensor, h: int, w: int, nh: int, nw: int) -> torch.Tensor:
        """Key/value sampling positions ``(B * heads, Hp, Wp, 2)`` (x, y in [-1, 1]) for the padded map."""
        b, hp, wp, _ = x_padded.shape
        ws, heads = self.window_size, self.num_heads
        pooled = x_padded.view(b, nh, ws, nw, ws, -1).mean(dim=(2, 4))  # AvgPool(ws, ws) incl. padded zeros
        offsets = self._pointwise(self.sampling_offsets[1](pooled), self.sampling_offsets[2])
        scales = self._pointwise(self.sampling_scales[1](pooled), self.sampling_scales[2])
        # (B, nh, nw, heads * 2) -> (B * heads, 2, nh, nw), channel 0 = x, 1 = y
        offsets = offsets.view(b, nh, nw, heads, 2).permute(0, 3, 4, 1, 2).reshape(b * heads, 2, nh, nw)
        scales = scales.view(b, nh, nw, heads, 2).permute(0, 3, 4, 1, 2).reshape(b * heads, 2, nh, nw)
        divisor = offsets.new_tensor([max(h // ws, 1), max(w // ws, 1)]).view(1, 2, 1, 1)
        offsets = offsets / divisor
        base, local = _vsa_reference_grids(hp, wp, ws, x_padded.device, x_padded.dtype)
        coords = base + local * scales[:, :, :, None, :, None] + offsets[:, :, :, None, :, None]
        return coords.permute(0, 2, 3, 4, 5, 1).reshape(b * heads, hp, wp, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, h, w, _ = x.shape
        ws, heads = self.window_size, self.num_heads
        x_padded, (top, left, nh, nw) = window_grid(x, ws)
        hp, wp = nh * ws, nw * ws
        grid = self.sampling_grid(x_padded, h, w, nh, nw)

        # q, k, v are projected from the UNPADDED map, then zero-padded (upstream order)
        c, hd = self.out_dim, self.out_dim // heads
        weight, bias = self.qkv.weight.flatten(1), self.qkv.bias  # rows (q|k|v, heads, hd)
        q = F.linear(x, weight[:c], None if bias is None else bias[:c])
        q = F.pad(q, (0, 0, left, wp - w - left, top, hp - h - top))
        q = windows_to_heads(q, ws, nh, nw, heads)
        # keys / values channels-first for grid_sample: rows reordered to (heads, k|v, hd) and the GEMM computes
        # W x^T, so its output already is (B * heads, 2 * hd, H, W) without a channels-last -> NCHW copy
        kv_weight = weight[c:].view(2, heads, hd, -1).transpose(0, 1).reshape(2 * c, -1)
        kv = torch.matmul(kv_weight, x.reshape(b, h * w, -1).transpose(1, 2))
        if bias is not None:
            kv = kv.add_(bias[c:].view(2, heads, hd).transpose(0, 1).reshape(2 * c, 1))
        kv = F.pad(kv.view(b * heads, 2 * hd, h, w), (left, wp - w - left, top, hp - h - top))
        kv = F.grid_sample(kv, grid.to(kv.dtype), mode="bilinear", padding_mode="zeros", align_corners=True)
        kv = kv.view(b, heads, 2, hd, nh, ws, nw, ws).permute(2, 0, 4, 6, 1, 5, 7, 3)
        k, v = kv.reshape(2, b * nh * nw, heads, ws * ws, hd).unbind(0)

        out = attention_with_bias(q, k, v, self.relative_position_bias(), scale=self.scale)
        out = heads_to_windows(out, ws, b, nh, nw)[:, top:top + h, left:left + w]
        return self.proj_drop(self._pointwise(out, self.proj))


# --------------------------------------------------------------------------- cells


class TokenBlock(nn.Module):
    """Container ``norm1 / attn / norm2 / mlp`` (the ViTAEv2 RC's ``attn`` sub-block; keys ``RC.attn.*``)."""

    def __init__(self, norm1: nn.Module, attn: nn.Module, norm2: nn.Module, mlp: nn.Module):
        super().__init__()
        self.norm1 = norm1
        self.attn = attn
        self.norm2 = norm2
        self.mlp = mlp


class ReductionCell(nn.Module):
    """Reduction cell: PRM tokens -> (CPE) -> norm1 -> attention, plus the PCM of the input, then MLP.

    ``x = attn(norm1(prm [+ pos(prm)])) + PCM(input)``; ``x = x + mlp(norm2(x))``. There is no
    identity path around the attention (the width changes) and no drop path, as upstream.
    With ``nested=True`` (ViTAEv2) norm1/attn/norm2/mlp live in a :class:`TokenBlock` named
    ``attn``; otherwise (VSA) they are direct children after ``pos``.

    Shape: ``(B, C_in, H, W)`` -> ``(B, H / ds, W / ds, token_dims)``.
    """

    def __init__(self, pcm: nn.Module, prm: PRM, norm1: nn.Module, attn: nn.Module, norm2: nn.Module,
                 mlp: nn.Module, pos: nn.Module | None = None, nested: bool = False):
        super().__init__()
        self.PCM = pcm
        self.PRM = prm
        if nested:
            if pos is not None:
                raise ValueError("a nested (ViTAEv2) reduction cell has no CPE")
            self.attn = TokenBlock(norm1, attn, norm2, mlp)
        else:
            self.norm1 = norm1
            self.pos = pos
            self.attn = attn
            self.norm2 = norm2
            self.mlp = mlp
        self.nested = nested

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        block = self.attn if self.nested else self
        tokens = self.PRM(x)
        if getattr(block, "pos", None) is not None:
            tokens = tokens + nchw_to_nhwc(block.pos(nhwc_to_nchw(tokens)))
        out = block.attn(block.norm1(tokens)) + nchw_to_nhwc(self.PCM(x))
        return out + block.mlp(block.norm2(out))


class NormalCell(nn.Module):
    """Normal cell: ``x + drop_path(attn(norm1(x [+ pos(x)]))) + drop_path(PCM(x))``, then an MLP residual.

    Children in the official order ``norm1, pos (cpe), attn, drop_path, norm2, mlp, PCM``.
    The residual and the PCM use the input before the CPE. The one DropPath module is applied
    three times with independent masks.

    Shape: ``(B, H, W, dim)`` -> same.
    """

    def __init__(self, dim: int, attn: nn.Module, mlp_ratio: float = 4.0, drop: float = 0.0,
                 drop_path: float = 0.0, norm_layer=nn.LayerNorm, group: int = 64, cpe: bool = False,
                 window_size: int = 7):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.pos = build_cpe(dim, window_size) if cpe else None
        self.attn = attn
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = Mlp(dim, hidden, dim, drop=drop)
        self.PCM = build_pcm((dim, hidden, dim, dim), (1, 1, 1), group)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.pos is not None:
            x = x + nchw_to_nhwc(self.pos(nhwc_to_nchw(x)))
        conv = nchw_to_nhwc(self.PCM(nhwc_to_nchw(shortcut)))
        x = shortcut + self.drop_path(self.attn(self.norm1(x))) + self.drop_path(conv)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class ViTAEStage(nn.Module):
    """One stage (official ``BasicLayer``): a reduction cell ``RC`` then ``NC`` normal cells.

    With ``use_checkpoint`` each normal cell runs under :func:`~.vitdet_blocks.checkpoint_block`
    (``use_reentrant=False``); the recomputation keeps BatchNorm running stats unchanged.

    Shape: ``(B, C_in, H, W)`` -> ``(B, H / ds, W / ds, token_dims)``.
    """

    def __init__(self, rc: nn.Module, ncs: Sequence[nn.Module], use_checkpoint: bool = False):
        super().__init__()
        self.RC = rc
        self.NC = nn.ModuleList(ncs)
        self.use_checkpoint = use_checkpoint

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.RC(x)
        for cell in self.NC:
            x = checkpoint_block(cell, x) if self.use_checkpoint and torch.is_grad_enabled() else cell(x)
        return x


# --------------------------------------------------------------------------- backbone base


class ViTAEv2Base(TransformerBackbone):
    """Shared behaviour of :class:`ViTAEv2` and :class:`ViTAEv2_VSA`.

    * ``forward(img (B, 3, H, W))`` returns a tuple of NCHW maps for ``out_indices``
      (default all four: strides 4/8/16/32); H and W must be multiples of the total ratio (32).
    * ``frozen_stages = k`` freezes stages ``0 .. k-1`` (eval mode, ``requires_grad=False``);
      upstream any ``k > 0`` crashes.
    * Random init happens in the constructor (Linear: trunc_normal std 0.02, bias 0;
      LayerNorm/BatchNorm: 1/0; convs: PyTorch default). ``init_weights(pretrained=path)``
      loads an official checkpoint through :func:`mmdet.engine.load_checkpoint`.
    """

    def _setup(self, layers: Sequence[ViTAEStage], downsample_ratios: Sequence[int], out_indices,
               frozen_stages: int, load_ema: bool) -> None:
        stages = len(layers)
        self.layers = nn.ModuleList(layers)
        self.downsample_ratios = list(downsample_ratios[:stages])
        self.out_indices = tuple(out_indices)
        if not self.out_indices or any(not 0 <= i < stages for i in self.out_indices):
            raise ValueError(f"out_indices={out_indices} must be non-empty stage indices in 0..{stages - 1}")
        if not -1 <= frozen_stages <= stages:
            raise ValueError(f"frozen_stages={frozen_stages} must be in -1..{stages} "
                             f"(number of leading stages to freeze)")
        self.frozen_stages = frozen_stages
        self.load_ema = load_ema
        self.apply(init_linear_and_norm)
        self._freeze_stages()

    def frozen_modules(self) -> list[nn.Module]:
        return list(self.layers[:max(self.frozen_stages, 0)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if x.dim() != 4:
            raise ValueError(f"{type(self).__name__} expects images (B, C, H, W), got shape {tuple(x.shape)}")
        last = max(self.out_indices)
        divisor = math.prod(self.downsample_ratios[:last + 1])
        h, w = x.shape[-2:]
        if h % divisor or w % divisor:
            raise ValueError(f"{type(self).__name__}: input size {h}x{w} is not a multiple of {divisor} (the product "
                             f"of downsample_ratios); pad images, e.g. Pad(size_divisor=32) in the pipeline")
        outs = []
        x = x.contiguous(memory_format=torch.channels_last)  # every conv and its NHWC view then share one layout
        for i, layer in enumerate(self.layers[:last + 1]):
            x = nhwc_to_nchw(layer(x))  # channels-last memory; the next stage's convs take it as is
            if i in self.out_indices:
                outs.append(x.contiguous())
        return tuple(outs)


# --------------------------------------------------------------------------- checkpoint conversion


def convert_official_vitae_checkpoint(checkpoint: Mapping, model: nn.Module,
                                      logger: logging.Logger) -> "OrderedDict[str, torch.Tensor]":
    """Official ViTAEv2 / VSA checkpoint (classification or detection) -> ``model``'s state_dict keys.

    * section: ``state_dict_ema`` (when ``model.load_ema``) > ``state_dict`` > ``model`` > the dict itself;
    * a ``module.`` prefix is stripped; MoBY ``encoder.*`` and detector ``backbone.*`` checkpoints are unwrapped;
    * ignored (and logged): the classifier ``head.*``;
    * relative-position entries as :func:`~mmdet.models.layers.transformer.adapt_relative_position_entries` (tables
      of another window size resized bicubically, the model's own ``relative_position_index`` kept).
    """
    state_dict = unwrap_moby_encoder(extract_state_dict(checkpoint, prefer_ema=getattr(model, "load_ema", True),
                                                               logger=logger))
    if not any(k.startswith("layers.") for k in state_dict) and any(k.startswith("backbone.") for k in state_dict):
        state_dict = OrderedDict((k[9:], v) for k, v in state_dict.items() if k.startswith("backbone."))
    converted = OrderedDict((k, v) for k, v in state_dict.items() if not k.startswith("head."))
    ignored = [k for k in state_dict if k.startswith("head.")]
    if ignored:
        logger.warning(f"ignored {len(ignored)} classifier keys the detection backbone does not use: "
                       + ", ".join(ignored))
    adapt_relative_position_entries(converted, model, logger)
    return converted
