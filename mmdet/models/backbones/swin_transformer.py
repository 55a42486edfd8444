"""Swin Transformer detection backbone (``SwinTransformer``, Swin-T/S/B), mmdetection-2.x compatible.

Layout, key names and numerics follow the Swin detection backbone of
Swin-Transformer-Object-Detection (as vendored by danczs/Swin-Visformer-Object-Detection):

* ``patch_embed``: zero-pad right/bottom to multiples of ``patch_size``, ``proj`` conv, optional ``norm`` (LN).
* ``layers.i.blocks.j``: W-MSA / SW-MSA blocks; the shifted ones are those with an ODD index inside their stage
  (shift ``window_size // 2``). Tokens are zero-padded right/bottom AFTER ``norm1`` to window multiples (padded
  tokens are not masked, only the shift mask applies); the shift mask (0 / -100) is built on the padded grid.
* ``layers.i.downsample``: patch merging (odd sizes zero-padded), ``norm`` over 4C then bias-free ``reduction``.
* ``norm{i}`` for ``i in out_indices``: LayerNorm on the stage output taken BEFORE its patch merging.

The shifted-window machinery (``WindowAttentionBase``, ``ShiftMaskCache``, ``shifted_window_attention``) lives in
:mod:`mmdet.models.layers.transformer`; this module holds what the Swin-family backbones share besides:
the checkpoint-conversion helpers, also used by :mod:`.swin_visformer` (``init_weights`` and frozen stages come
from :class:`~mmdet.models.layers.transformer.TransformerBackbone`).
"""
from __future__ import annotations

import logging
import re
from collections import OrderedDict
from typing import Callable, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.checkpoint import checkpoint

from mmdet.engine.checkpoint import extract_state_dict, register_checkpoint_converter
from mmdet.models.layers.transformer import (DropPath, Mlp, ShiftMaskCache, TransformerBackbone, WindowAttentionBase,
                                             adapt_relative_position_entries, init_linear_and_norm, pad_hw_to_window,
                                             shifted_window_attention, unwrap_moby_encoder)
from mmdet.registry import BACKBONES

# ---------------------------------------------------------------------------------------------------------------
# helpers shared by the Swin-family backbones (also used by swin_visformer.py)
# ---------------------------------------------------------------------------------------------------------------


def drop_path_rates(num_blocks: int, max_rate: float) -> list[float]:
    """Stochastic-depth rate of every block: linear from 0 to ``max_rate`` over all blocks (python floats)."""
    if num_blocks <= 1:
        return [0.0] * num_blocks
    return [max_rate * i / (num_blocks - 1) for i in range(num_blocks)]


def run_block(block: nn.Module, use_checkpoint: bool, *args):
    """``block(*args)``, through ``torch.utils.checkpoint`` (non-reentrant) while training with ``use_checkpoint``."""
    if use_checkpoint and torch.is_grad_enabled():
        return checkpoint(block, *args, use_reentrant=False)
    return block(*args)


def drop_keys(state_dict: "OrderedDict[str, torch.Tensor]", is_ignored: Callable[[str], bool],
              logger: logging.Logger, reason: str) -> list[str]:
    """Remove the keys selected by ``is_ignored`` from ``state_dict`` (in place); log and return them."""
    dropped = [k for k in state_dict if is_ignored(k)]
    for k in dropped:
        del state_dict[k]
    if dropped:
        logger.info(f"ignored {len(dropped)} checkpoint keys ({reason}): {', '.join(dropped)}")
    return dropped


# ---------------------------------------------------------------------------------------------------------------
# Swin Transformer
# ---------------------------------------------------------------------------------------------------------------

class WindowAttention(WindowAttentionBase):
    """W-MSA / SW-MSA on a channels-last map (Swin): ``qkv`` Linear, heads, relative bias, ``proj`` Linear.

    Args:
        dim: channels C; head_dim = C // num_heads; logits scaled by ``qk_scale or head_dim ** -0.5``.
    """

    def __init__(self, dim: int, window_size: int, num_heads: int, qkv_bias: bool = True,
                 qk_scale: float | None = None, attn_drop: float = 0.0, proj_drop: float = 0.0):
        head_dim = dim // num_heads
        super().__init__(window_size, num_heads, qk_scale or head_dim ** -0.5, attn_drop)
        self.dim = dim
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, shift_mask: torch.Tensor | None = None) -> torch.Tensor:
        """
        Args:
            x: ``(B, Hp, Wp, C)`` padded (and cyclically shifted) map, Hp and Wp multiples of the window.
            shift_mask: ``(nW, N, N)`` or None.
        Returns:
            ``(B, Hp, Wp, C)``.
        """
        b, hp, wp, c = x.shape
        ws, heads = self.window_size, self.num_heads
        nh, nw = hp // ws, wp // ws
        qkv = self.qkv(x).view(b, nh, ws, nw, ws, 3, heads, c // heads)
        qkv = qkv.permute(5, 0, 1, 3, 6, 2, 4, 7).reshape(3, b, nh * nw, heads, ws * ws, c // heads)
        out = self.attend(qkv[0], qkv[1], qkv[2], shift_mask)                     # (B, nW, heads, N, hd)
        out = out.view(b, nh, nw, heads, ws, ws, c // heads).permute(0, 1, 4, 2, 5, 3, 6).reshape(b, hp, wp, c)
        return self.proj_drop(self.proj(out))


class SwinTransformerBlock(nn.Module):
    """``x + DP(attn(norm1(x)))``, ``x + DP(mlp(norm2(x)))`` with right/bottom window padding after ``norm1``."""

    def __init__(self, dim: int, num_heads: int, window_size: int = 7, shift_size: int = 0, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: float = 0.0, act_layer=nn.GELU, norm_layer=nn.LayerNorm):
        super().__init__()
        if not 0 <= shift_size < window_size:
            raise ValueError(f"shift_size must be in [0, window_size={window_size}), got {shift_size}")
        self.window_size, self.shift_size = window_size, shift_size
        self.norm1 = norm_layer(dim)
        self.attn = WindowAttention(dim, window_size, num_heads, qkv_bias, qk_scale, attn_drop, drop)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = norm_layer(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio), act_layer=act_layer, drop=drop)

    def forward(self, x: torch.Tensor, h: int, w: int, shift_mask: torch.Tensor | None) -> torch.Tensor:
        """
        Args:
            x: ``(B, H*W, C)`` tokens of an ``h x w`` map.
            shift_mask: ``(nW, N, N)`` mask of the padded grid (used only if this block is shifted).
        Returns:
            ``(B, H*W, C)``.
        """
        b, _, c = x.shape
        y = shifted_window_attention(self.norm1(x).view(b, h, w, c), self.attn, self.window_size, self.shift_size,
                                     shift_mask, hw_dims=(1, 2))
        x = x + self.drop_path(y.reshape(b, h * w, c))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchMerging(nn.Module):
    """2x2 neighbourhood concat (order (0,0), (1,0), (0,1), (1,1)) -> ``norm`` (4C) -> ``reduction`` 4C->2C."""

    def __init__(self, dim: int, norm_layer=nn.LayerNorm):
        super().__init__()
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)
        self.norm = norm_layer(4 * dim)

    def forward(self, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
        """``(B, H*W, C)`` -> ``(B, ceil(H/2)*ceil(W/2), 2C)`` (odd sizes zero-padded right/bottom)."""
        b, _, c = x.shape
        x = x.view(b, h, w, c)
        if h % 2 or w % 2:
            x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
        return self.reduction(self.norm(x.view(b, -1, 4 * c)))


class BasicLayer(nn.Module):
    """One Swin stage: ``blocks`` (odd index inside the stage shifted) + optional ``downsample``."""

    def __init__(self, dim: int, depth: int, num_heads: int, window_size: int = 7, mlp_ratio: float = 4.0,
                 qkv_bias: bool = True, qk_scale: float | None = None, drop: float = 0.0, attn_drop: float = 0.0,
                 drop_path: Sequence[float] | float = 0.0, norm_layer=nn.LayerNorm, downsample=None,
                 use_checkpoint: bool = False):
        super().__init__()
        self.window_size = window_size
        self.use_checkpoint = use_checkpoint
        rates = list(drop_path) if isinstance(drop_path, (list, tuple)) else [drop_path] * depth
        self.blocks = nn.ModuleList(
            SwinTransformerBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else window_size // 2, mlp_ratio,
                                 qkv_bias, qk_scale, drop, attn_drop, rates[i], norm_layer=norm_layer)
            for i in range(depth))
        self.downsample = downsample(dim=dim, norm_layer=norm_layer) if downsample is not None else None
        self.shift_masks = ShiftMaskCache(window_size, window_size // 2)

    def forward(self, x: torch.Tensor, h: int, w: int):
        """``(B, H*W, C)`` -> ``(stage output (B, H*W, C), H, W, downsampled (B, H'*W', 2C), H', W')``."""
        shift_mask = self.shift_masks.get(h, w, x.device) if len(self.blocks) > 1 else None
        for blk in self.blocks:
            x = run_block(blk, self.use_checkpoint, x, h, w, shift_mask)
        if self.downsample is None:
            return x, h, w, x, h, w
        return x, h, w, self.downsample(x, h, w), (h + 1) // 2, (w + 1) // 2


class PatchEmbed(nn.Module):
    """Zero-pad right/bottom to multiples of ``patch_size``, ``proj`` conv, optional LayerNorm ``norm``."""

    def __init__(self, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96, norm_layer=None):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)
        self.norm = norm_layer(embed_dim) if norm_layer is not None else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` -> ``(B, C, ceil(H/p), ceil(W/p))``."""
        pad_h, pad_w = pad_hw_to_window(x.shape[2], x.shape[3], self.patch_size)
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        if self.norm is not None:
            x = self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return x


@BACKBONES.register_module()
class SwinTransformer(TransformerBackbone):
    """Swin Transformer detection backbone; returns ``norm{i}`` outputs ``(B, C_i, H/2^(i+2), W/2^(i+2))``.

    Args (official names and defaults): pretrain_img_size (size the absolute position embedding is built for),
    patch_size, in_chans, embed_dim, depths, num_heads, window_size, mlp_ratio, qkv_bias, qk_scale, drop_rate,
    attn_drop_rate, drop_path_rate (linspace over all blocks), norm_layer, ape (absolute position embedding,
    bicubically resized to the input at run time), patch_norm, out_indices, frozen_stages (0: patch_embed;
    1: + absolute_pos_embed; k >= 2: + stages 0..k-2), use_checkpoint (activation checkpointing of every block).
    """

    def __init__(self, pretrain_img_size: int = 224, patch_size: int = 4, in_chans: int = 3, embed_dim: int = 96,
                 depths: Sequence[int] = (2, 2, 6, 2), num_heads: Sequence[int] = (3, 6, 12, 24),
                 window_size: int = 7, mlp_ratio: float = 4.0, qkv_bias: bool = True, qk_scale: float | None = None,
                 drop_rate: float = 0.0, attn_drop_rate: float = 0.0, drop_path_rate: float = 0.2,
                 norm_layer=nn.LayerNorm, ape: bool = False, patch_norm: bool = True,
                 out_indices: Sequence[int] = (0, 1, 2, 3), frozen_stages: int = -1, use_checkpoint: bool = False):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f"SwinTransformer: depths {list(depths)} and num_heads {list(num_heads)} must have the "
                             f"same length")
        num_layers = len(depths)
        bad = [i for i in out_indices if not 0 <= i < num_layers]
        if bad:
            raise ValueError(f"SwinTransformer: out_indices {list(out_indices)} must lie in [0, {num_layers})")
        self.num_layers = num_layers
        self.embed_dim = embed_dim
        self.ape = ape
        self.patch_norm = patch_norm
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages

        self.patch_embed = PatchEmbed(patch_size, in_chans, embed_dim, norm_layer if patch_norm else None)
        if ape:
            grid = pretrain_img_size // patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, embed_dim, grid, grid))
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)
        self.pos_drop = nn.Dropout(p=drop_rate)

        rates = drop_path_rates(sum(depths), drop_path_rate)
        self.layers = nn.ModuleList()
        for i in range(num_layers):
            start = sum(depths[:i])
            self.layers.append(BasicLayer(
                int(embed_dim * 2 ** i), depths[i], num_heads[i], window_size, mlp_ratio, qkv_bias, qk_scale,
                drop_rate, attn_drop_rate, rates[start:start + depths[i]], norm_layer,
                PatchMerging if i < num_layers - 1 else None, use_checkpoint))
        self.num_features = [int(embed_dim * 2 ** i) for i in range(num_layers)]
        for i in self.out_indices:
            self.add_module(f"norm{i}", norm_layer(self.num_features[i]))

        self.apply(init_linear_and_norm)
        self._freeze_stages()

    def frozen_modules(self) -> list[nn.Module]:
        k = self.frozen_stages
        return ([self.patch_embed] if k >= 0 else []) + ([self.pos_drop, *self.layers[:k - 1]] if k >= 2 else [])

    def _freeze_stages(self) -> None:
        super()._freeze_stages()
        if self.frozen_stages >= 1 and self.ape:
            self.absolute_pos_embed.requires_grad = False

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` -> tuple of ``(B, C_i, H_i, W_i)`` for ``i in out_indices``."""
        x = self.patch_embed(x)
        h, w = x.shape[2], x.shape[3]
        if self.ape:
            x = x + F.interpolate(self.absolute_pos_embed, size=(h, w), mode="bicubic", align_corners=False)
        x = self.pos_drop(x.flatten(2).transpose(1, 2))
        outs = []
        for i, layer in enumerate(self.layers):
            x_out, oh, ow, x, h, w = layer(x, h, w)
            if i in self.out_indices:
                x_out = getattr(self, f"norm{i}")(x_out)
                outs.append(x_out.view(-1, oh, ow, self.num_features[i]).permute(0, 3, 1, 2).contiguous())
        return tuple(outs)


_SWIN_CLASSIFICATION_ONLY = re.compile(r"^(head\.|norm\.)|attn_mask$")


@register_checkpoint_converter(SwinTransformer)
def convert_swin_checkpoint(checkpoint: Mapping, model: SwinTransformer,
                            logger: logging.Logger) -> "OrderedDict[str, torch.Tensor]":
    """Official Swin checkpoints (``{'model': ...}`` ImageNet files, mmdet ``state_dict`` files, MoBY) -> our keys.

    ``state_dict`` > ``model`` > the object itself; ``module.`` stripped; MoBY's online ``encoder.`` branch taken;
    classification-only keys (``head.*``, final ``norm.*``, ``attn_mask`` buffers) ignored and reported;
    ``absolute_pos_embed`` ``(1, L, C)`` reshaped to ``(1, C, H, W)``; relative-position tables of other window
    sizes resized bicubically; ``relative_position_index`` kept from the model.
    """
    state_dict = unwrap_moby_encoder(extract_state_dict(checkpoint))
    own = model.state_dict()
    drop_keys(state_dict, lambda k: k not in own and _SWIN_CLASSIFICATION_ONLY.search(k) is not None, logger,
              "classification-only: head, final norm, attention-mask buffers")
    pos = state_dict.get("absolute_pos_embed")
    if pos is not None and pos.dim() == 3 and "absolute_pos_embed" in own:
        n, c, gh, gw = own["absolute_pos_embed"].shape
        if pos.shape != (n, gh * gw, c):
            logger.warning(f"absolute_pos_embed: checkpoint shape {list(pos.shape)} does not fit the model's "
                           f"{[n, c, gh, gw]}; not loaded")
            del state_dict["absolute_pos_embed"]
        else:
            state_dict["absolute_pos_embed"] = pos.view(n, gh, gw, c).permute(0, 3, 1, 2).contiguous()
    adapt_relative_position_entries(state_dict, model, logger)
    return state_dict
