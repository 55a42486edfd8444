"""ViTDet backbones of ViTAE-Transformer/ViTDet: ``ViT`` (ViT-B), ``ViTAE`` (ViTAE-B), ``ViTAE_S``.

Each backbone ends with the simple feature pyramid ``fpn1..fpn4`` and returns four maps with
the token width as channels, at strides 4, 8, 16 and 32::

    ViT(img_size=1024, embed_dim=768, depth=12, num_heads=12, qkv_bias=True, drop_path_rate=0.1,
        use_abs_pos_emb=True)(torch.zeros(1, 3, 1024, 1024))
    -> (1, 768, 256, 256), (1, 768, 128, 128), (1, 768, 64, 64), (1, 768, 32, 32)

Constructor arguments and state-dict keys are the official ones. Differences from the official
code (all documented extensions / fixes; results at ``img_size`` are unchanged):

* inputs of another size work: the absolute position embedding is resampled bicubically to the
  token grid and the global blocks' rel-pos tables linearly (the official code needs exactly
  ``img_size``);
* ``use_checkpoint=True`` works for all three classes (the official ViT / ViTAE_S paths crash)
  and leaves outputs, gradients and BatchNorm running statistics unchanged;
* attention runs through ``F.scaled_dot_product_attention`` with the rel-pos term as float mask;
* random initialisation happens in every constructor (ViTAE_S included); ``init_weights(pretrained)``
  only loads a checkpoint (``pretrained`` or the constructor's ``pretrained``).

Official checkpoints (MAE ``{'model'}``, timm ``state_dict_ema``, ``module.``-prefixed DDP
dicts, BEiT-style ``q_bias``/``v_bias``) load through :func:`mmdet.engine.load_checkpoint`,
which applies :func:`convert_vitdet_checkpoint` registered below for the three classes.
"""
from __future__ import annotations

import logging
import math
from collections import OrderedDict
from functools import partial
from typing import Mapping

import torch
from torch import nn

from mmdet.engine.checkpoint import extract_state_dict, register_checkpoint_converter, strip_prefix
from mmdet.models.layers.transformer import TransformerBackbone, init_linear_and_norm, unwrap_moby_encoder
from mmdet.models.layers.vitae_cells import per_stage, stage_drop_path_rates
from mmdet.models.layers.vitdet_blocks import (RelPosAttention, ReductionCell, ViTDetBlock, checkpoint_block,
                                               conv_pcm, pyramid_outputs, resize_pos_embed, simple_feature_pyramid)
from mmdet.registry import BACKBONES

__all__ = ["ViT", "ViTAE", "ViTAE_S", "convert_vitdet_checkpoint", "convert_vit_state_dict"]


class PatchEmbed(nn.Module):
    """Non-overlapping ``patch_size`` conv: ``(B, 3, H, W)`` -> tokens ``(B, h*w, D)`` and ``(h, w)``."""

    def __init__(self, img_size: int = 224, patch_size: int = 16, in_chans: int = 3, embed_dim: int = 768):
        super().__init__()
        self.patch_shape = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.patch_shape[0] * self.patch_shape[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, int]]:
        x = self.proj(x)
        # one copy here: a transposed view would give every residual sum after it the same strides, and each
        # LayerNorm / reshape of the 12+ blocks would then copy (forward and backward; 11 % of a CPU train step)
        return x.flatten(2).transpose(1, 2).contiguous(), (x.shape[2], x.shape[3])


class _PlainViTDet(TransformerBackbone):
    """Shared body of ``ViT`` and ``ViTAE``: patch embed, abs pos-embed, blocks (windowed, every
    ``interval``-th global), final norm, simple pyramid."""

    vitae_cells = False

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=80, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., hybrid_backbone=None, norm_layer=None, init_values=None, use_checkpoint=False,
                 use_abs_pos_emb=False, use_rel_pos_bias=False, use_shared_rel_pos_bias=False, out_indices=(11,),
                 interval=3, pretrained=None, frozen_stages=-1):
        super().__init__()
        if hybrid_backbone is not None:
            raise ValueError(f"{type(self).__name__}: hybrid_backbone is not supported (the ViTDet configs use the "
                             f"patch embedding); remove hybrid_backbone from the backbone config")
        norm_layer = norm_layer or partial(nn.LayerNorm, eps=1e-6)
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim
        self.out_indices = out_indices
        self.use_checkpoint = use_checkpoint
        self.frozen_stages = frozen_stages
        self.pretrained = pretrained
        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        self.pos_embed = nn.Parameter(torch.zeros(1, self.patch_embed.num_patches, embed_dim)) \
            if use_abs_pos_emb else None
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = torch.linspace(0, drop_path_rate, depth).tolist()
        mlp_hidden = int(embed_dim * mlp_ratio)
        blocks = []
        for i in range(depth):
            windowed = (i + 1) % interval != 0
            attn = RelPosAttention(embed_dim, num_heads, qkv_bias, qk_scale, attn_drop_rate, drop_rate,
                                   window_size=(14, 14) if windowed else self.patch_embed.patch_shape,
                                   windowed=windowed, separate_qv_bias=self.vitae_cells and not windowed)
            pcm = conv_pcm([embed_dim, mlp_hidden, embed_dim], groups=embed_dim // 4, bn_after={0},
                           act_after={0}) if self.vitae_cells else None
            blocks.append(ViTDetBlock(embed_dim, attn, mlp_hidden, drop_rate, dpr[i], norm_layer, pcm=pcm,
                                      init_values=None if self.vitae_cells else init_values))
        self.blocks = nn.ModuleList(blocks)
        self.norm = norm_layer(embed_dim)
        simple_feature_pyramid(self, embed_dim)
        if self.pos_embed is not None:
            nn.init.trunc_normal_(self.pos_embed, std=0.02, a=-2.0, b=2.0)
        self.apply(init_linear_and_norm)
        with torch.no_grad():
            for layer_id, blk in enumerate(self.blocks, start=1):
                blk.attn.proj.weight.div_(math.sqrt(2.0 * layer_id))
                blk.mlp.fc2.weight.div_(math.sqrt(2.0 * layer_id))
        self._freeze_stages()

    def frozen_modules(self) -> list[nn.Module]:
        """``frozen_stages >= 0`` freezes the patch embedding; ``k > 0`` also the first k blocks."""
        return [] if self.frozen_stages < 0 else [self.patch_embed, *self.blocks[:self.frozen_stages]]

    def get_num_layers(self) -> int:
        return len(self.blocks)

    def no_weight_decay(self) -> set[str]:
        return {"pos_embed", "cls_token"}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` -> 4 maps ``(B, D, H/4, W/4) ... (B, D, H/32, W/32)`` (H, W in patches x 16)."""
        b = x.shape[0]
        x, (h, w) = self.patch_embed(x)
        if self.pos_embed is not None:
            x = x + resize_pos_embed(self.pos_embed, self.patch_embed.patch_shape, (h, w))
        x = self.pos_drop(x)
        checkpointing = self.use_checkpoint and self.training and torch.is_grad_enabled()
        for blk in self.blocks:
            x = checkpoint_block(blk, x, h, w) if checkpointing else blk(x, h, w)
        x = self.norm(x)
        xp = x.transpose(1, 2).reshape(b, -1, h, w)
        return pyramid_outputs(self, xp)


@BACKBONES.register_module()
class ViT(_PlainViTDet):
    """ViTDet plain ViT (ViT-B with MAE weights): windowed blocks with global blocks every
    ``interval``-th, decomposed rel-pos (scaled q), final norm and simple feature pyramid.

    Official arguments; ``num_classes``, ``out_indices``, ``use_rel_pos_bias``,
    ``use_shared_rel_pos_bias`` are accepted and unused (as upstream). ``frozen_stages`` is an
    addition (default -1: nothing frozen).
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=80, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., hybrid_backbone=None, norm_layer=None, init_values=None, use_checkpoint=False,
                 use_abs_pos_emb=False, use_rel_pos_bias=False, use_shared_rel_pos_bias=False, out_indices=(11,),
                 interval=3, pretrained=None, frozen_stages=-1):
        super().__init__(img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads, mlp_ratio,
                         qkv_bias, qk_scale, drop_rate, attn_drop_rate, drop_path_rate, hybrid_backbone, norm_layer,
                         init_values, use_checkpoint, use_abs_pos_emb, use_rel_pos_bias, use_shared_rel_pos_bias,
                         out_indices, interval, pretrained, frozen_stages)


@BACKBONES.register_module()
class ViTAE(_PlainViTDet):
    """ViTDet ViTAE-B: the ViT layout with a parallel convolution branch (``PCM``: grouped 3x3 conv
    ``D -> mlp_ratio*D`` (groups D/4), BatchNorm, SiLU, grouped 3x3 conv back) in every block; global
    blocks use a bias-free ``qkv`` plus ``q_bias``/``v_bias`` (k bias 0). ``init_values`` is unused."""

    vitae_cells = True

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=80, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4., qkv_bias=False, qk_scale=None, drop_rate=0., attn_drop_rate=0.,
                 drop_path_rate=0., hybrid_backbone=None, norm_layer=None, init_values=None, use_checkpoint=False,
                 use_abs_pos_emb=True, use_rel_pos_bias=False, use_shared_rel_pos_bias=False, frozen_stages=-1,
                 out_indices=(3, 5, 7, 11), interval=3, pretrained=None):
        super().__init__(img_size, patch_size, in_chans, num_classes, embed_dim, depth, num_heads, mlp_ratio,
                         qkv_bias, qk_scale, drop_rate, attn_drop_rate, drop_path_rate, hybrid_backbone, norm_layer,
                         init_values, use_checkpoint, use_abs_pos_emb, use_rel_pos_bias, use_shared_rel_pos_bias,
                         out_indices, interval, pretrained, frozen_stages)


class _ViTAEStage(nn.Module):
    """One ViTAE-S stage: reduction cell ``RC`` then normal cells ``NC`` (keys ``RC.*``, ``NC.{j}.*``)."""

    def __init__(self, rc: ReductionCell, cells: list[ViTDetBlock]):
        super().__init__()
        self.RC = rc
        self.NC = nn.ModuleList(cells)


@BACKBONES.register_module()
class ViTAE_S(TransformerBackbone):
    """ViTDet ViTAE-S: stages of performer reduction cells and ViTAE normal cells, final norm, simple pyramid.

    Official arguments (scalars are repeated per stage). NC block j of a stage is global when
    ``j in globalBlock`` (its rel-pos tables sized for the stage's nominal grid
    ``img_size // prod(downsample_ratios)``), windowed (14x14) otherwise. ``out_indices`` is unused.
    """

    def __init__(self, img_size=224, in_chans=3, stages=4, embed_dims=64, token_dims=64,
                 downsample_ratios=(4, 2, 2, 2), kernel_size=(7, 3, 3, 3), RC_heads=(1, 1, 1, 1), NC_heads=4,
                 dilations=((1, 2, 3, 4), (1, 2, 3), (1, 2), (1, 2)), RC_tokens_type='transformer',
                 NC_tokens_type='transformer', RC_group=(1, 1, 1, 1), NC_group=(1, 32, 64, 64),
                 NC_depth=(2, 2, 6, 2), mlp_ratio=4., qkv_bias=True, qk_scale=None, drop_rate=0.,
                 attn_drop_rate=0., drop_path_rate=0., norm_layer=partial(nn.LayerNorm, eps=1e-6),
                 window_size=(14, 14), out_indices=(0, 1, 2, 3), frozen_stages=-1, use_checkpoint=False,
                 load_ema=True, globalBlock=(2, 5, 8, 13), pretrained=None):
        super().__init__()

        def expand(value, name):
            return per_stage(value, stages, f"ViTAE_S: {name}")

        self.stages = stages
        self.load_ema = load_ema
        self.out_indices = out_indices
        self.frozen_stages = frozen_stages
        self.use_checkpoint = use_checkpoint
        self.pretrained = pretrained
        embed_dims = expand(embed_dims, "embed_dims")
        token_dims = list(token_dims) if isinstance(token_dims, (list, tuple)) \
            else [token_dims * 2 ** i for i in range(stages)]
        ratios = expand(downsample_ratios, "downsample_ratios")
        kernels = expand(kernel_size, "kernel_size")
        rc_heads, nc_heads = expand(RC_heads, "RC_heads"), expand(NC_heads, "NC_heads")
        if isinstance(dilations, (list, tuple)) and not isinstance(dilations[0], (list, tuple)):
            dilations = [dilations] * stages  # one stage's dilations, repeated
        dilations = expand(dilations, "dilations")
        rc_types, nc_types = expand(RC_tokens_type, "RC_tokens_type"), expand(NC_tokens_type, "NC_tokens_type")
        rc_groups, nc_groups = expand(RC_group, "RC_group"), expand(NC_group, "NC_group")
        depths, mlp_ratios = expand(NC_depth, "NC_depth"), expand(mlp_ratio, "mlp_ratio")
        bad = [t for t in nc_types if t != "transformer"]
        if bad:
            raise ValueError(f"ViTAE_S: NC_tokens_type {bad[0]!r} is not supported; use 'transformer'")
        self.pos_drop = nn.Dropout(p=drop_rate)
        dpr = stage_drop_path_rates(drop_path_rate, depths)  # upstream's slicing quirk
        layers, stage_size = [], img_size
        for i in range(stages):
            rc = ReductionCell(in_chans, embed_dims[i], token_dims[i], ratios[i], kernels[i], rc_heads[i],
                               dilations[i], rc_types[i], rc_groups[i])
            stage_size //= ratios[i]
            dim, hidden = token_dims[i], int(token_dims[i] * mlp_ratios[i])
            cells = []
            for j in range(depths[i]):
                windowed = j not in globalBlock
                attn = RelPosAttention(dim, nc_heads[i], qkv_bias, qk_scale, attn_drop_rate, drop_rate,
                                       window_size=tuple(window_size) if windowed else (stage_size, stage_size),
                                       windowed=windowed)
                pcm = conv_pcm([dim, hidden, dim, dim], nc_groups[i], bn_after={0, 1}, act_after={0, 1, 2})
                cells.append(ViTDetBlock(dim, attn, hidden, drop_rate, dpr[i][j], norm_layer, pcm=pcm))
            layers.append(_ViTAEStage(rc, cells))
            in_chans = token_dims[i]
        self.layers = nn.ModuleList(layers)
        self.num_layers = len(layers)
        self.norm = norm_layer(token_dims[-1])
        simple_feature_pyramid(self, token_dims[-1])
        self.depth = int(sum(depths)) + stages
        self.apply(init_linear_and_norm)
        self._freeze_stages()

    def frozen_modules(self) -> list[nn.Module]:
        """``frozen_stages = k > 0`` freezes stages ``0..k-1``, as upstream."""
        return list(self.layers[:max(self.frozen_stages, 0)])

    def get_num_layers(self) -> int:
        return self.depth

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(B, 3, H, W)`` -> 4 maps with ``token_dims[-1]`` channels at strides 4, 8, 16, 32 of the
        stride-16 grid ``ceil(ceil(ceil(H/4)/2)/2)``."""
        b = x.shape[0]
        checkpointing = self.use_checkpoint and self.training and torch.is_grad_enabled()
        for index, stage in enumerate(self.layers):
            if index > 0:  # tokens (B, h*w, C) of the previous stage -> map (B, C, h, w) for the reduction cell
                x = x.transpose(1, 2).reshape(b, -1, h, w)
            x, (h, w) = stage.RC(x)
            for cell in stage.NC:
                x = checkpoint_block(cell, x, h, w) if checkpointing else cell(x, h, w)
        x = self.norm(x)
        return pyramid_outputs(self, x.transpose(1, 2).reshape(b, -1, h, w))


# --------------------------------------------------------------------------------------------
# checkpoint conversion
# --------------------------------------------------------------------------------------------
def _pos_embed_grid(num_tokens: int) -> tuple[int, bool] | None:
    """Side of the square grid held by ``num_tokens`` pos-embed rows and whether a cls row leads."""
    for extra in (0, 1):
        side = math.isqrt(num_tokens - extra)
        if side * side == num_tokens - extra and side > 0:
            return side, bool(extra)
    return None


def convert_vit_state_dict(state_dict: Mapping, grid: tuple[int, int] | None, separate_qv_bias_keys=(),
                           logger: logging.Logger | None = None) -> "OrderedDict[str, torch.Tensor]":
    """Official-loader conversion of a ViT/MAE/BEiT/ViTAE state_dict into ViTDet keys.

    * strips ``module.``; MoBY ``encoder.*`` layouts keep only the online encoder;
    * drops ``relative_position_index`` / ``relative_position_bias_table`` entries (BEiT tables never load);
    * for every ``X.q_bias`` adds ``X.qkv.bias = cat(q_bias, 0, v_bias)`` (the q/v keys stay, as upstream);
      for every ``X`` in ``separate_qv_bias_keys`` that has only ``X.qkv.bias``, splits it into
      ``X.q_bias``/``X.v_bias`` (dropping the k bias changes no attention output);
    * ``pos_embed``: a leading cls row is dropped and the square grid resampled bicubically
      (align_corners=False) to ``grid``; ``cls_token`` is kept and so reported as unexpected.
    """
    logger = logger or logging.getLogger("mmdet")
    sd = unwrap_moby_encoder(strip_prefix(state_dict, "module."))
    sd = OrderedDict((k, v) for k, v in sd.items()
                     if "relative_position_index" not in k and "relative_position_bias_table" not in k)
    for key in [k for k in sd if k.endswith(".q_bias")]:
        v_key = key[:-len("q_bias")] + "v_bias"
        if v_key in sd:
            q_bias = sd[key]
            sd[key[:-len("q_bias")] + "qkv.bias"] = torch.cat([q_bias, torch.zeros_like(q_bias), sd[v_key]])
    for prefix in separate_qv_bias_keys:
        qkv_bias = sd.get(prefix + ".qkv.bias")
        if qkv_bias is not None and prefix + ".q_bias" not in sd:
            q_bias, _, v_bias = qkv_bias.chunk(3)
            sd[prefix + ".q_bias"], sd[prefix + ".v_bias"] = q_bias, v_bias
    if grid is not None and isinstance(sd.get("pos_embed"), torch.Tensor) and sd["pos_embed"].dim() == 3:
        pos = sd["pos_embed"]
        layout = _pos_embed_grid(pos.shape[1])
        if pos.shape[1] == grid[0] * grid[1]:
            pass  # already on the model grid (e.g. a detection checkpoint)
        elif layout is None:
            logger.warning(f"pos_embed with {pos.shape[1]} tokens is neither a square grid nor a grid plus a cls "
                           f"token; it is not converted")
        else:
            side, has_cls = layout
            pos = pos[:, 1:] if has_cls else pos
            logger.info(f"pos_embed: {'cls token dropped, ' if has_cls else ''}grid {side}x{side} -> "
                        f"{grid[0]}x{grid[1]} (bicubic)")
            sd["pos_embed"] = resize_pos_embed(pos, (side, side), grid)
    return sd


def convert_vitdet_checkpoint(checkpoint: Mapping, model: nn.Module,
                              logger: logging.Logger) -> "OrderedDict[str, torch.Tensor]":
    """Registered converter of ``ViT`` / ``ViTAE`` / ``ViTAE_S``: picks ``state_dict_ema`` (when the model's
    ``load_ema``, default True) > ``state_dict`` > ``model``, then :func:`convert_vit_state_dict`."""
    state_dict = extract_state_dict(checkpoint, prefer_ema=getattr(model, "load_ema", True))
    patch_embed = getattr(model, "patch_embed", None)
    grid = patch_embed.patch_shape if isinstance(patch_embed, PatchEmbed) else None
    separate = [name for name, m in model.named_modules()
                if isinstance(m, RelPosAttention) and m.q_bias is not None]
    return convert_vit_state_dict(state_dict, grid, separate, logger)


for _cls in (ViT, ViTAE, ViTAE_S):
    register_checkpoint_converter(_cls)(convert_vitdet_checkpoint)
