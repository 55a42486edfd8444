"""Swin-Visformer detection backbone (``SwinVisformer``: VisformerV2-S, Visformer-S (v1) + Swin windows).

Layout, key names and numerics follow danczs/Swin-Visformer-Object-Detection (``swin_visformer.py``). Everything
is NCHW:

* ``stem``: 7x7/2 conv (no bias) -> ``BatchNorm`` -> ReLU.
* ``patch_embed{0..3}``: 2x2/2 conv (bias) + ``norm`` (``BatchNorm``); channels embed_dim/4, /2, x1, x2.
* ``stage{s}.{j}``: blocks; with attention (``attn_stage[s] == '1'``): ``x + DP(attn(norm1(x)))`` where ``attn`` is
  window attention with 1x1-conv ``qkv`` / ``proj`` (no proj bias), logits ``(q*s)(k*s)^T + bias`` with
  ``s = head_dim ** qk_scale`` (default -0.25), windows 56/28/14/7 per stage, right/bottom zero padding after
  ``norm1`` (padded tokens unmasked), shifted by window//2 when the GLOBAL block index (over all stages) is odd,
  with the 0 / -100 shift mask of the padded grid. Always ``x + DP(mlp(norm2(x)))`` with a conv MLP: ``conv1`` 1x1
  -> GELU -> (``conv2`` grouped 3x3 -> GELU when ``spatial_conv[s] == '1'``, hidden 2C) -> ``conv3`` 1x1.
* ``norm{i}`` (``BatchNorm``) on each stage output in ``out_indices``.

``BatchNorm`` wraps ``nn.BatchNorm2d`` as attribute ``bn`` (keys ``*.bn.*``).
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Mapping, Sequence

import torch
from torch import nn

from mmdet.engine.checkpoint import extract_state_dict, register_checkpoint_converter
from mmdet.models.layers.transformer import (DropPath, ShiftMaskCache, TransformerBackbone, WindowAttentionBase,
                                             adapt_relative_position_entries, init_linear_and_norm,
                                             shifted_window_attention)
from mmdet.registry import BACKBONES

from .swin_transformer import drop_keys, drop_path_rates, run_block

STAGE_WINDOW_SIZES = (56, 28, 14, 7)       # window side per stage (the official code fixes them)
STAGE_HEAD_DIM_RATIOS = (0.25, 0.5, 1.0, 1.0)


class BatchNorm(nn.Module):
    """``nn.BatchNorm2d(dim, eps=1e-5, momentum=0.1)`` stored as ``bn`` (official key layout)."""

    def __init__(self, dim: int):
        super().__init__()
        self.bn = nn.BatchNorm2d(dim, eps=1e-5, momentum=0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(x)


class ConvMlp(nn.Module):
    """``conv1`` 1x1 -> act -> drop [-> ``conv2`` grouped 3x3 -> act] -> ``conv3`` 1x1 -> drop, all bias-free.

    With ``spatial_conv`` the hidden width is ``2 * in_features`` (``in_features * 5 // 6`` if ``group < 2``),
    otherwise ``hidden_features``.
    """

    def __init__(self, in_features: int, hidden_features: int, act_layer=nn.GELU, drop: float = 0.0,
                 group: int = 8, spatial_conv: bool = False):
        super().__init__()
        if spatial_conv:
            hidden_features = in_features * 5 // 6 if group < 2 else in_features * 2
        self.conv1 = nn.Conv2d(in_features, hidden_features, 1, bias=False)
        self.act1 = act_layer()
        self.conv2 = (nn.Conv2d(hidden_features, hidden_features, 3, padding=1, groups=group, bias=False)
                      if spatial_conv else None)
        self.act2 = act_layer() if spatial_conv else None
        self.conv3 = nn.Conv2d(hidden_features, in_features, 1, bias=False)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(self.act1(self.conv1(x)))
        if self.conv2 is not None:
            x = self.act2(self.conv2(x))
        return self.drop(self.conv3(x))


class ConvWindowAttention(WindowAttentionBase):
    """Window attention on an NCHW map with 1x1-conv ``qkv`` (channels split as (3, heads, head_dim)) and ``proj``.

    Args:
        head_dim_ratio: head_dim = int(dim // num_heads * head_dim_ratio).
        qk_scale: exponent f of the q and k scale ``s = head_dim ** f`` (default -0.25, i.e. logits / sqrt(d)).
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = False,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0,
                 head_dim_ratio: float = 1.0):
        head_dim = int(dim // num_heads * head_dim_ratio)
        s = head_dim ** (qk_scale if qk_scale is not None else -0.25)
        super().__init__(window_size, num_heads, s * s, attn_drop)
        self.head_dim = head_dim
        self.qkv = nn.Conv2d(dim, head_dim * num_heads * 3, 1, bias=qkv_bias)
        self.proj = nn.Conv2d(head_dim * num_heads, dim, 1, bias=False)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            x: ``(B, C, Hp, Wp)`` padded (and cyclically shifted) map, Hp and Wp multiples of the window.
            shift_mask: ``(nW, N, N)`` or None.
        Returns:
            ``(B, C, Hp, Wp)``.
        """
        b, _, hp, wp = x.shape
        ws, heads, hd = self.window_size, self.num_heads, self.head_dim
        nh, nw = hp // ws, wp // ws
        qkv = self.qkv(x).view(b, 3, heads, hd, nh, ws, nw, ws)
        qkv = qkv.permute(1, 0, 4, 6, 2, 5, 7, 3).reshape(3, b, nh * nw, heads, ws * ws, hd)
        out = self.attend(qkv[0], qkv[1], qkv[2], shift_mask)                     # (B, nW, heads, N, hd)
        out = out.view(b, nh, nw, heads, ws, ws, hd).permute(0, 3, 6, 1, 4, 2, 5).reshape(b, heads * hd, hp, wp)
        return self.proj_drop(self.proj(out))


class Block(nn.Module):
    """Swin-Visformer block (NCHW): optional shifted-window attention branch, then the conv-MLP branch."""

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift_size: int = 0,
                 head_dim_ratio: float = 1.0, mlp_ratio: float = 4.0, qkv_bias: bool = False,
                 qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0, drop_path: float = 0.0,
                 act_layer=nn.GELU, norm_layer=BatchNorm, group: int = 8, attn_disabled: bool = False,
                 spatial_conv: bool = False):
        super().__init__()
        self.window_size, self.shift_size = window_size, shift_size
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        if attn_disabled:
            self.norm1 = self.attn = None
        else:
            self.norm1 = norm_layer(dim)
            self.attn = ConvWindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop,
                                            head_dim_ratio)
        self.norm2 = norm_layer(dim)
        self.mlp = ConvMlp(dim, int(dim * mlp_ratio), act_layer, drop, group, spatial_conv)

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """``(B, C, H, W)`` -> same; ``shift_mask`` ``(nW, N, N)`` of the padded grid is used if this block shifts."""
        if self.attn is not None:
            y = shifted_window_attention(self.norm1(x), self.attn, self.window_size, self.shift_size, shift_mask,
                                         hw_dims=(2, 3))
            x = x + self.drop_path(y)
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    """``proj`` conv (kernel = stride = patch_size, bias; sizes floored) + optional ``norm``."""

    def __init__(self, patch_size: int = 2, in_chans: int = 3, embed_dim: int = 768, norm_layer=None):
        super().__init__()
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        return self.norm(x) if self.norm is not None else x


class Stage(nn.ModuleList):
    """The blocks of one stage (keys ``stage{s}.{j}``) and that stage's shift-mask cache."""

    def __init__(self, blocks: Sequence[Block], window_size: int):
        super().__init__(blocks)
        self.window_size = window_size
        self.needs_mask = any(b.attn is not None and b.shift_size for b in blocks)
        self.shift_masks = ShiftMaskCache(window_size, window_size // 2)

    def forward(self, x: torch.Tensor, use_checkpoint: bool) -> torch.Tensor:
        shift_mask = self.shift_masks.get(x.shape[2], x.shape[3], x.device) if self.needs_mask else None
        for blk in self:
            x = run_block(blk, use_checkpoint, x, shift_mask)
        return x


@BACKBONES.register_module()
class SwinVisformer(TransformerBackbone):
    """Swin-Visformer backbone; returns ``norm{i}`` outputs ``(B, C_i, H/2^(i+2), W/2^(i+2))``.

    ``C_i = embed_dim / 4 * 2^i`` (VisformerV2-S: 64, 128, 256, 512; sizes floored at every stride-2 step).

    Args (official names): init_channels (stem width), embed_dim (stage-2 width), depth (4 stage depths),
    num_heads (int or 4), mlp_ratio, qkv_bias, qk_scale (exponent of the q/k scale, see
    :class:`ConvWindowAttention`), drop_rate, attn_drop_rate, drop_path_rate (linspace over all blocks),
    norm_layer / embedding_norm (module factories ``f(dim)``, default :class:`BatchNorm`), attn_stage /
    spatial_conv (one '0'/'1' per stage), group (groups of the 3x3 MLP conv), conv_init (kaiming fan_out
    init of convs instead of trunc-normal 0.02), out_indices, frozen_stages (-1: none; k >= 0: the stem and
    ``patch_embed{i}`` + ``stage{i}`` for i < k, kept in eval mode), use_checkpoint (activation checkpointing of
    every block; BatchNorm running stats of checkpointed blocks are updated again by the recomputation, as in the
    official code). ``num_classes`` and ``pool`` are classification arguments the detection configs pass; the
    detection backbone has no head and ignores them.
    """

    def __init__(self, init_channels: int = 32, num_classes: int = 1000, embed_dim: int = 384,
                 depth: Sequence[int] = (0, 7, 4, 4), num_heads: int | Sequence[int] = 6, mlp_ratio: float = 4.0,
                 qkv_bias: bool = False, qk_scale: float | None = None, drop_rate: float = 0.0,
                 attn_drop_rate: float = 0.0, drop_path_rate: float = 0.0, norm_layer=BatchNorm,
                 attn_stage: str = "1111", spatial_conv: str = "1111", group: int = 8, pool: bool = True,
                 conv_init: bool = False, embedding_norm=BatchNorm, out_indices: Sequence[int] = (0, 1, 2, 3),
                 frozen_stages: int = -1, use_checkpoint: bool = False):
        super().__init__()
        if len(depth) != 4:
            raise ValueError(f"SwinVisformer: depth must list 4 stage depths, got {list(depth)}")
        for name, flags in (("attn_stage", attn_stage), ("spatial_conv", spatial_conv)):
            if len(flags) != 4 or set(flags) - {"0", "1"}:
                raise ValueError(f"SwinVisformer: {name} must be 4 characters '0'/'1' (one per stage), got {flags!r}")
        heads = list(num_heads) if isinstance(num_heads, (list, tuple)) else [num_heads] * 4
        if len(heads) != 4:
            raise ValueError(f"SwinVisformer: num_heads must be an int or 4 values, got {num_heads!r}")
        bad = [i for i in out_indices if not 0 <= i < 4]
        if bad:
            raise ValueError(f"SwinVisformer: out_indices {list(out_indices)} must lie in [0, 4)")
        self.num_classes = num_classes
        self.init_channels = init_channels
        self.embed_dim = embed_dim
        self.conv_init = conv_init
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.use_checkpoint = use_checkpoint
        self.num_features = [embed_dim // 4 * 2 ** i for i in range(4)]

        self.stem = nn.Sequential(nn.Conv2d(3, init_channels, 7, stride=2, padding=3, bias=False),
                                  BatchNorm(init_channels), nn.ReLU(inplace=True))
        rates = drop_path_rates(sum(depth), drop_path_rate)
        in_chans = init_channels
        for s in range(4):
            dim, window = self.num_features[s], STAGE_WINDOW_SIZES[s]
            self.add_module(f"patch_embed{s}", PatchEmbed(2, in_chans, dim, embedding_norm))
            first = sum(depth[:s])
            blocks = [Block(dim, heads[s], window, 0 if i % 2 == 0 else window // 2, STAGE_HEAD_DIM_RATIOS[s],
                            mlp_ratio, qkv_bias, qk_scale, drop_rate, attn_drop_rate, rates[i],
                            norm_layer=norm_layer, group=group, attn_disabled=attn_stage[s] == "0",
                            spatial_conv=spatial_conv[s] == "1")
                      for i in range(first, first + depth[s])]        # i: GLOBAL block index (decides the shift)
            self.add_module(f"stage{s}", Stage(blocks, window))
            in_chans = dim
        for i in self.out_indices:
            self.add_module(f"norm{i}", norm_layer(self.num_features[i]))

        self.apply(self._init_module)
        self._freeze_stages()

    def _init_module(self, m: nn.Module) -> None:
        init_linear_and_norm(m)
        if isinstance(m, nn.Conv2d):
            if self.conv_init:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            else:
                nn.init.trunc_normal_(m.weight, std=0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)

    def frozen_modules(self) -> list[nn.Module]:
        if self.frozen_stages < 0:
            return []
        return [self.stem] + [getattr(self, f"{name}{s}") for s in range(min(self.frozen_stages, 4))
                              for name in ("patch_embed", "stage")]

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` -> tuple of ``(B, C_i, H_i, W_i)`` for ``i in out_indices`` (sizes floored per stride 2)."""
        x = self.stem(x)
        outs = []
        for s in range(4):
            x = getattr(self, f"patch_embed{s}")(x)
            x = getattr(self, f"stage{s}")(x, self.use_checkpoint)
            if s in self.out_indices:
                outs.append(getattr(self, f"norm{s}")(x))
        return tuple(outs)


_VISFORMER_CLASSIFICATION_ONLY = re.compile(r"^(head\.|norm\.|pos_embed\d*$)")


@register_checkpoint_converter(SwinVisformer)
def convert_swin_visformer_checkpoint(checkpoint: Mapping, model: SwinVisformer,
                                      logger: logging.Logger) -> "OrderedDict[str, torch.Tensor]":
    """danczs/Visformer checkpoints -> our keys.

    Accepts the classification training file (``{'model': ..., 'optimizer': ..., 'args': ...}``), its
    ``convert_to_mmmodel.py`` output (the bare state_dict) and mmdet ``state_dict`` files; strips ``module.``;
    ignores and reports the classification-only ``pos_embed0..3``, final ``norm.*`` and ``head.*``; resizes
    relative-position tables of other window sizes; keeps the model's ``relative_position_index``.
    """
    state_dict = extract_state_dict(checkpoint)
    own = model.state_dict()
    drop_keys(state_dict, lambda k: k not in own and _VISFORMER_CLASSIFICATION_ONLY.search(k) is not None, logger,
              "classification-only: position embeddings, final norm, head")
    if "patch_embed0.proj.weight" not in state_dict and any(k.startswith("patch_embed1.") for k in state_dict):
        logger.warning("this checkpoint has no patch_embed0: it looks like the original Visformer (visformer_small"
                       ".pth), whose layout differs from SwinVisformer; use swin_visformer_small(_v2).pth instead")
    adapt_relative_position_entries(state_dict, model, logger)
    return state_dict
