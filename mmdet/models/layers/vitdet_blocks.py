"""Building blocks of the ViTDet backbones (``ViT``, ``ViTAE``, ``ViTAE_S``).

* :class:`RelPosAttention` - multi-head self-attention with the MViT-style decomposed
  relative position term, either inside 14x14 windows (zero padding right/bottom, padded
  keys not masked) or over the whole token grid ("global" blocks). As in the official
  ViTDet fork the rel-pos term is computed from the query **after** multiplication by
  the scale. The term is handed to ``F.scaled_dot_product_attention`` as an additive
  float mask.
* :class:`ViTDetBlock` - pre-norm transformer block; with a ``pcm`` it becomes the ViTAE
  NormalCell (parallel convolution branch fed with the un-normalised tokens).
* :class:`PerformerAttention`, :class:`PyramidReduction`, :class:`ReductionCell` - the
  ViTAE-S reduction cells (multi-dilation strided convs + performer attention).
* :class:`SimpleFeaturePyramid` - ``fpn1..fpn4`` (strides 4/8/16/32) built on the stride-16 map.
* :func:`checkpoint_block` - activation checkpointing (``use_reentrant=False``) that keeps
  BatchNorm running statistics from being updated a second time by the recomputation.
"""
from __future__ import annotations

import math
from contextlib import nullcontext

import torch
import torch.nn.functional as F
import torch.utils.checkpoint as torch_checkpoint
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from .transformer import (DecomposedBias, DropPath, Mlp, attention_with_bias, pad_to_multiple, window_partition,
                          window_reverse)


# --------------------------------------------------------------------------------------------
# decomposed relative position
# --------------------------------------------------------------------------------------------
def decomposed_rel_pos_index(q_size: int, k_size: int) -> torch.Tensor:
    """``(q_size, k_size)`` int64 index into a ``(2*max(q,k)-1, C)`` table (MViT rule).

    ``idx[i, j] = i*max(k/q, 1) - j*max(q/k, 1) + (k-1)*max(q/k, 1)``, truncated to int.
    """
    q_ratio = max(k_size / q_size, 1.0)
    k_ratio = max(q_size / k_size, 1.0)
    dist = (torch.arange(q_size, dtype=torch.float64)[:, None] * q_ratio
            - torch.arange(k_size, dtype=torch.float64)[None, :] * k_ratio + (k_size - 1) * k_ratio)
    return dist.long()


def resize_rel_pos_table(table: torch.Tensor, length: int) -> torch.Tensor:
    """Linearly resample a ``(L, C)`` rel-pos table to ``(length, C)`` (identity when L == length)."""
    if table.shape[0] == length:
        return table
    resized = F.interpolate(table.t().unsqueeze(0), size=length, mode="linear", align_corners=False)
    return resized.squeeze(0).t()


def decomposed_rel_pos_bias(q: torch.Tensor, grid: tuple[int, int], rel_pos_h: torch.Tensor,
                            rel_pos_w: torch.Tensor, index_h: torch.Tensor, index_w: torch.Tensor) -> DecomposedBias:
    """The additive attention term ``q·Rh[dy] + q·Rw[dx]`` for queries and keys on the same grid, factored.

    Args:
        q: ``(B, nH, h*w, C)`` queries (already scaled, as the official fork does).
        grid: ``(h, w)`` token grid of queries and keys.
        rel_pos_h, rel_pos_w: ``(2h-1, C)`` / ``(2w-1, C)`` tables.
        index_h, index_w: ``(h, h)`` / ``(w, w)`` int64 indices (:func:`decomposed_rel_pos_index`).
    Returns:
        :class:`DecomposedBias` with ``row (B, nH, h*w, h)`` and ``col (B, nH, h*w, w)``, same dtype as ``q``;
        ``.dense()`` is the ``(B, nH, h*w, h*w)`` mask.
    """
    b, n_heads, _, c = q.shape
    h, w = grid
    r_q = q.reshape(b, n_heads, h, w, c)
    rel_h = torch.einsum("bnyxc,ykc->bnyxk", r_q, rel_pos_h[index_h].to(q.dtype))
    rel_w = torch.einsum("bnyxc,xlc->bnyxl", r_q, rel_pos_w[index_w].to(q.dtype))
    return DecomposedBias(rel_h.reshape(b, n_heads, h * w, h), rel_w.reshape(b, n_heads, h * w, w))


class RelPosAttention(nn.Module):
    """Self-attention with decomposed relative position, windowed or global.

    Args:
        dim: token channels C.
        num_heads: heads; head_dim = C // num_heads.
        qkv_bias: learnable q/k/v bias.
        qk_scale: overrides ``head_dim ** -0.5``.
        attn_drop, proj_drop: dropout on the attention weights / on the output.
        window_size: ``(S, S)``; windowed: the window, global: the nominal token grid (sizes the tables).
        windowed: partition into windows (with right/bottom zero padding) or attend over the whole grid.
        separate_qv_bias: bias-free ``qkv`` plus ``q_bias``/``v_bias`` parameters, k bias fixed at 0
            (global blocks of ViTAE-B, BEiT/MAE-ViTAE layout).

    State-dict keys: ``[q_bias, v_bias,] rel_pos_h, rel_pos_w, qkv.weight[, qkv.bias], proj.*``.
    """

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = False, qk_scale: float | None = None,
                 attn_drop: float = 0.0, proj_drop: float = 0.0, window_size: tuple[int, int] = (14, 14),
                 windowed: bool = True, separate_qv_bias: bool = False):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"dim={dim} must be divisible by num_heads={num_heads}")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        self.window_size = tuple(window_size)
        self.windowed = windowed
        if separate_qv_bias and qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        table_len = 2 * self.window_size[0] - 1
        self.rel_pos_h = nn.Parameter(torch.zeros(table_len, head_dim))
        self.rel_pos_w = nn.Parameter(torch.zeros(table_len, head_dim))
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias and not separate_qv_bias)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        size = self.window_size[0]
        self.register_buffer("rel_index", decomposed_rel_pos_index(size, size), persistent=False)

    def qkv_bias_vector(self) -> torch.Tensor | None:
        """The effective ``(3C,)`` qkv bias (``cat(q_bias, 0, v_bias)`` for the separate layout)."""
        if self.q_bias is not None:
            return torch.cat((self.q_bias, torch.zeros_like(self.q_bias), self.v_bias))
        return self.qkv.bias

    def _grid_rel_pos(self, grid: tuple[int, int]):
        """Tables and indices for a token grid; the tables are resampled when it differs from the nominal size."""
        h, w = grid
        size = self.window_size[0]
        index_h = self.rel_index if h == size else decomposed_rel_pos_index(h, h).to(self.rel_index.device)
        index_w = self.rel_index if w == size else decomposed_rel_pos_index(w, w).to(self.rel_index.device)
        return (resize_rel_pos_table(self.rel_pos_h, 2 * h - 1), resize_rel_pos_table(self.rel_pos_w, 2 * w - 1),
                index_h, index_w)

    def _attend(self, qkv: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B', N, 3C)`` projected tokens on a ``grid`` -> ``(B', N, C)`` attention output (before proj)."""
        bw, n, c3 = qkv.shape
        q, k, v = qkv.reshape(bw, n, 3, self.num_heads, c3 // (3 * self.num_heads)).permute(2, 0, 3, 1, 4)
        q = q * self.scale
        table_h, table_w, index_h, index_w = self._grid_rel_pos(grid)
        bias = decomposed_rel_pos_bias(q, grid, table_h, table_w, index_h, index_w)
        drop = self.attn_drop.p if self.training else 0.0
        out = attention_with_bias(q, k, v, bias, scale=1.0, dropout_p=drop)
        return out.transpose(1, 2).reshape(bw, n, c3 // 3)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``x``: ``(B, h*w, C)`` normalised tokens, row-major -> ``(B, h*w, C)``."""
        b, n, c = x.shape
        if not self.windowed:
            out = self._attend(F.linear(x, self.qkv.weight, self.qkv_bias_vector()), (h, w))
            return self.proj_drop(self.proj(out))
        ws = self.window_size
        # project before padding: a zero-padded token projects to the bias alone, so padding the
        # bias-free projection with zeros and adding the bias afterwards is the same computation
        qkv = F.linear(x, self.qkv.weight).view(b, h, w, 3 * c)
        qkv, hp, wp = pad_to_multiple(qkv, ws)
        bias = self.qkv_bias_vector()
        if bias is not None:
            qkv = qkv + bias
        windows = window_partition(qkv, ws).reshape(-1, ws[0] * ws[1], 3 * c)
        out = self._attend(windows, ws)
        out = window_reverse(out.view(-1, ws[0], ws[1], c), ws, hp, wp)[:, :h, :w]
        return self.proj_drop(self.proj(out.reshape(b, n, c)))


# --------------------------------------------------------------------------------------------
# blocks
# --------------------------------------------------------------------------------------------
class ViTDetBlock(nn.Module):
    """Pre-norm block ``x + DP(attn(norm1(x))) [+ DP(PCM(x))] + DP(mlp(norm2(.)))``.

    Without ``pcm`` this is the ViT block (optional layer-scale ``gamma_1``/``gamma_2`` when
    ``init_values`` is set); with ``pcm`` (a module mapping ``(B, C, h, w) -> (B, C, h, w)``)
    it is the ViTAE NormalCell: the conv branch sees the un-normalised input and is added after
    the attention residual, with its own drop-path draw.
    """

    def __init__(self, dim: int, attn: RelPosAttention, mlp_hidden: int, drop: float = 0.0,
                 drop_path: float = 0.0, norm_layer=nn.LayerNorm, pcm: nn.Module | None = None,
                 init_values: float | None = None):
        super().__init__()
        self.norm1 = norm_layer(dim)
        self.attn = attn
        self.drop_path = DropPath(drop_path)
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, mlp_hidden, drop=drop)
        self.PCM = pcm
        if init_values is not None:
            self.gamma_1 = nn.Parameter(init_values * torch.ones(dim))
            self.gamma_2 = nn.Parameter(init_values * torch.ones(dim))
        else:
            self.gamma_1 = self.gamma_2 = None

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``x``: ``(B, h*w, C)`` -> ``(B, h*w, C)``."""
        conv = None
        if self.PCM is not None:
            b, n, c = x.shape
            grid = x.transpose(1, 2).reshape(b, c, h, w)
            conv = self.drop_path(self.PCM(grid).flatten(2).transpose(1, 2))
        y = self.attn(self.norm1(x), h, w)
        x = x + self.drop_path(y if self.gamma_1 is None else self.gamma_1 * y)
        if conv is not None:
            x = x + conv
        y = self.mlp(self.norm2(x))
        return x + self.drop_path(y if self.gamma_2 is None else self.gamma_2 * y)


def conv_pcm(channels: list[int], groups: int, bn_after: set[int], act_after: set[int],
             strides: list[int] | None = None) -> nn.Sequential:
    """A PCM branch: 3x3 convs (padding 1, ``groups``) through ``channels``, with BatchNorm after the
    convs listed in ``bn_after`` and SiLU after those in ``act_after`` (module indices as the official keys)."""
    strides = strides or [1] * (len(channels) - 1)
    layers: list[nn.Module] = []
    for i, (cin, cout) in enumerate(zip(channels[:-1], channels[1:])):
        layers.append(nn.Conv2d(cin, cout, 3, strides[i], 1, groups=groups))
        if i in bn_after:
            layers.append(nn.BatchNorm2d(cout))
        if i in act_after:
            layers.append(nn.SiLU(inplace=True))
    return nn.Sequential(*layers)


# --------------------------------------------------------------------------------------------
# ViTAE-S reduction cells
# --------------------------------------------------------------------------------------------
class PerformerAttention(nn.Module):
    """ViTAE-S ``Token_performer``: linear attention with positive random features.

    Keys: ``w`` (frozen ``(m, emb)``), ``kqv``, ``proj``, ``norm1`` (LN eps 1e-5 over ``dim``),
    ``norm2`` (over ``emb``), ``mlp.0``/``mlp.2``. ``kqv`` is split in the order k, q, v.
    """

    def __init__(self, dim: int, in_dim: int, head_cnt: int = 1, kernel_ratio: float = 0.5,
                 dp1: float = 0.1, dp2: float = 0.1):
        super().__init__()
        self.emb = in_dim * head_cnt
        self.m = int(self.emb * kernel_ratio)
        self.w = nn.Parameter(nn.init.orthogonal_(torch.randn(self.m, self.emb)) * math.sqrt(self.m),
                              requires_grad=False)
        self.kqv = nn.Linear(dim, 3 * self.emb)
        self.dp = nn.Dropout(dp1)
        self.proj = nn.Linear(self.emb, self.emb)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(self.emb)
        self.mlp = nn.Sequential(nn.Linear(self.emb, self.emb), nn.GELU(), nn.Linear(self.emb, self.emb),
                                 nn.Dropout(dp2))
        self.epsilon = 1e-8

    def random_features(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, emb)`` -> ``(B, T, m)``: ``exp(x·wᵀ - |x|²/2) / sqrt(m)`` (projection in float32)."""
        half_sq_norm = (x * x).sum(dim=-1, keepdim=True) / 2
        return torch.exp(x.float() @ self.w.t() - half_sq_norm) / math.sqrt(self.m)

    def attn(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, T, dim)`` normalised tokens -> ``(B, T, emb)`` (``v + dp(proj(attention))``)."""
        k, q, v = torch.split(self.kqv(x), self.emb, dim=-1)
        kp, qp = self.random_features(k), self.random_features(q)
        denom = qp @ kp.sum(dim=1).unsqueeze(-1)                       # (B, T, 1)
        kptv = v.float().transpose(1, 2) @ kp                          # (B, emb, m)
        y = (qp @ kptv.transpose(1, 2)) / (denom + self.epsilon)       # (B, T, emb)
        return v + self.dp(self.proj(y))


class PyramidReduction(nn.Module):
    """ViTAE-S ``PRM``: strided dilated convs (+GELU), outputs concatenated dilation-major.

    An axis whose size is not divisible by the stride gets ``ceil(stride/2) - 1`` extra padding on
    both sides, so the output grid is ``ceil(size / stride)``. Keys ``convs.{i}.0``.
    """

    def __init__(self, kernel_size: int, stride: int, dilations: list[int], in_chans: int, embed_dim: int):
        super().__init__()
        self.stride = stride
        self.kernel_size = kernel_size
        self.dilations = list(dilations)
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Conv2d(in_chans, embed_dim, kernel_size, stride, self._padding(d), d), nn.GELU())
            for d in self.dilations)
        self.out_chans = embed_dim * len(self.dilations)

    def _padding(self, dilation: int) -> int:
        return math.ceil(((self.kernel_size - 1) * dilation + 1 - self.stride) / 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(B, Cin, H, W)`` -> tokens ``(B, h*w, len(dilations)*embed_dim)`` and ``(h, w)``."""
        extra = math.ceil(self.stride / 2) - 1
        extra_h = extra if x.shape[2] % self.stride else 0
        extra_w = extra if x.shape[3] % self.stride else 0
        maps = []
        for dilation, branch in zip(self.dilations, self.convs):
            conv = branch[0]
            pad = self._padding(dilation)
            maps.append(branch[1](F.conv2d(x, conv.weight, conv.bias, self.stride,
                                           (pad + extra_h, pad + extra_w), dilation)))
        y = torch.cat(maps, dim=1)
        return y.flatten(2).transpose(1, 2), (y.shape[2], y.shape[3])


class ReductionCell(nn.Module):
    """ViTAE-S reduction cell: PRM tokens, performer attention, plus the strided PCM branch.

    ``tokens_type='performer_less'`` keeps only the PRM (no ``PCM``/``attn`` keys).
    """

    def __init__(self, in_chans: int, embed_dims: int, token_dims: int, downsample_ratio: int, kernel_size: int,
                 num_heads: int, dilations: list[int], tokens_type: str, group: int):
        super().__init__()
        if tokens_type not in ("performer", "performer_less"):
            raise ValueError(f"ViTAE_S RC_tokens_type {tokens_type!r} is not supported; "
                             f"use 'performer' or 'performer_less' (the ViTDet configs)")
        strides, residual = [], downsample_ratio // 2
        for _ in range(3):
            strides.append(2 if residual > 0 else 1)
            residual //= 2
        self.downsample_ratio = downsample_ratio
        if tokens_type == "performer":
            self.PCM = conv_pcm([in_chans, embed_dims, embed_dims, token_dims], group, bn_after={1},
                                act_after={0, 1, 2}, strides=strides)
        else:
            self.PCM = None
        self.PRM = PyramidReduction(kernel_size, downsample_ratio, dilations, in_chans, embed_dims)
        if tokens_type == "performer":
            self.attn = PerformerAttention(self.PRM.out_chans, token_dims, head_cnt=num_heads, kernel_ratio=0.5)
        else:
            self.attn = None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        """``(B, C, H, W)`` -> tokens ``(B, h*w, token_dims)`` on ``(h, w) = ceil((H, W) / ratio)``."""
        tokens, grid = self.PRM(x)
        if self.attn is None:
            return tokens, grid
        conv = self.PCM(x).flatten(2).transpose(1, 2)
        y = self.attn.attn(self.attn.norm1(tokens)) + conv
        return y + self.attn.mlp(self.attn.norm2(y)), grid


# --------------------------------------------------------------------------------------------
# pyramid, position embedding, checkpointing
# --------------------------------------------------------------------------------------------
class Norm2d(nn.Module):
    """Channels-last LayerNorm (eps 1e-6) on a ``(B, C, H, W)`` map; key ``ln``."""

    def __init__(self, channels: int):
        super().__init__()
        self.ln = nn.LayerNorm(channels, eps=1e-6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ln(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


def simple_feature_pyramid(module: nn.Module, dim: int) -> None:
    """Attach ``fpn1`` (x4 up), ``fpn2`` (x2 up), ``fpn3`` (identity), ``fpn4`` (/2 max-pool) to ``module``."""
    module.fpn1 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2), Norm2d(dim), nn.GELU(),
                                nn.ConvTranspose2d(dim, dim, 2, 2))
    module.fpn2 = nn.Sequential(nn.ConvTranspose2d(dim, dim, 2, 2))
    module.fpn3 = nn.Identity()
    module.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)


def pyramid_outputs(module: nn.Module, xp: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``(B, D, h, w)`` stride-16 map -> maps at strides 4, 8, 16, 32 (all D channels)."""
    return module.fpn1(xp), module.fpn2(xp), module.fpn3(xp), module.fpn4(xp)


def resize_pos_embed(pos_embed: torch.Tensor, src_grid: tuple[int, int], dst_grid: tuple[int, int]) -> torch.Tensor:
    """Bicubically (align_corners=False) resample ``(1, h*w, C)`` position embeddings to another grid."""
    if tuple(src_grid) == tuple(dst_grid):
        return pos_embed
    c = pos_embed.shape[-1]
    grid = pos_embed.reshape(1, src_grid[0], src_grid[1], c).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=tuple(dst_grid), mode="bicubic", align_corners=False)
    return grid.permute(0, 2, 3, 1).reshape(1, dst_grid[0] * dst_grid[1], c)


class _RestoreBatchNormStats:
    """Recomputation context: BatchNorm running stats touched during recompute are restored on exit."""

    def __init__(self, module: nn.Module):
        self.norms = [m for m in module.modules()
                      if isinstance(m, _BatchNorm) and m.training and m.track_running_stats]
        self.saved: list = []

    def __enter__(self):
        self.saved = [(m.running_mean.clone(), m.running_var.clone(), m.num_batches_tracked.clone())
                      for m in self.norms]
        return self

    def __exit__(self, *exc):
        with torch.no_grad():
            for m, (mean, var, count) in zip(self.norms, self.saved):
                m.running_mean.copy_(mean)
                m.running_var.copy_(var)
                m.num_batches_tracked.copy_(count)
        return False


def checkpoint_block(block: nn.Module, x: torch.Tensor, *args):
    """``block(x, *args)`` with activation checkpointing (non-reentrant).

    Outputs and gradients equal the plain call (RNG state is replayed, so drop-path masks agree);
    BatchNorm running statistics are updated once, not twice.
    """
    return torch_checkpoint.checkpoint(block, x, *args, use_reentrant=False,
                                       context_fn=lambda: (nullcontext(), _RestoreBatchNormStats(block)))
