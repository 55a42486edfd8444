"""ViTAEv2 detection backbone (``type='ViTAEv2'``), state_dict-compatible with the official detection code.

Stages 0-1 use 7x7 window attention (no relative-position bias, no shift), stages 2-3 global
MHSA (ViTAEv2-S). Numerically relevant upstream behaviour kept: PRM concat dilation-major,
reduction-cell LayerNorms eps 1e-5 vs normal-cell eps 1e-6, window padding after the norm
with top/left = floor, no skip around the RC window attention, the T2T value skip and bias-free
qkv of the RC transformer, the reduction cell always using a 7x7 window and MLP ratio 1, and
the stochastic-depth slicing quirk. Deliberate differences: ``out_indices`` selects the
returned maps (upstream always returns all four), ``frozen_stages > 0`` works (upstream
raises AttributeError), and activation checkpointing leaves BatchNorm running stats as
without it. Official checkpoints load through :func:`mmdet.engine.load_checkpoint` or
``init_weights(pretrained=path)``.
"""
from __future__ import annotations

from functools import partial

from torch import nn

from mmdet.engine.checkpoint import register_checkpoint_converter
from mmdet.registry import BACKBONES

from ..layers.transformer import Mlp
from ..layers.vitae_cells import (PRM, NormalCell, ReductionCell, TokenAttention, ViTAEStage, ViTAEv2Base,
                                  build_pcm, convert_official_vitae_checkpoint, expand_stage_args, pcm_strides,
                                  stage_drop_path_rates)

TOKEN_TYPES = ("window", "transformer")
RC_WINDOW_SIZE = 7  # upstream never passes window_size to the reduction cells


@BACKBONES.register_module()
class ViTAEv2(ViTAEv2Base):
    """ViTAEv2 (official constructor arguments; lists are per stage, scalars are repeated).

    ``token_dims`` given as a scalar ``t`` becomes ``[t * 2**i]``. Supported token types:
    ``'window'`` and ``'transformer'`` (the only ones the released models use). ``img_size``
    is accepted for compatibility and, as upstream, changes no parameter and no result.

    Forward: ``(B, in_chans, H, W)`` with H, W multiples of 32 -> tuple of ``(B, token_dims[i], H / s_i, W / s_i)``
    for ``i in out_indices``, ``s = 4, 8, 16, 32``.
    """

    def __init__(self, img_size=224, in_chans=3, embed_dims=64, token_dims=64, downsample_ratios=[4, 2, 2, 2],
                 kernel_size=[7, 3, 3, 3], RC_heads=[1, 1, 1, 1], NC_heads=4,
                 dilations=[[1, 2, 3, 4], [1, 2, 3], [1, 2], [1, 2]], RC_op='cat', RC_tokens_type='window',
                 NC_tokens_type='transformer', RC_group=[1, 1, 1, 1], NC_group=[1, 32, 64, 64],
                 NC_depth=[2, 2, 6, 2], mlp_ratio=4., qkv_bias=True, qk_scale=None, drop_rate=0.,
                 attn_drop_rate=0., drop_path_rate=0., norm_layer=partial(nn.LayerNorm, eps=1e-6), stages=4,
                 window_size=7, out_indices=(0, 1, 2, 3), frozen_stages=-1, use_checkpoint=False, load_ema=True):
        super().__init__()
        hint = f"use one of {TOKEN_TYPES} (the token types of the released ViTAEv2 detection models)"
        st = expand_stage_args("ViTAEv2", stages, TOKEN_TYPES, hint, locals())
        self.use_checkpoint = use_checkpoint
        drop_path_rates = stage_drop_path_rates(drop_path_rate, st.NC_depth[:stages])

        layers, in_dim = [], in_chans
        for i in range(stages):
            if st.downsample_ratios[i] <= 1:
                raise ValueError("ViTAEv2: every stage needs downsample_ratios > 1 (a reduction cell)")
            rc = self._reduction_cell(in_dim, st.embed_dims[i], st.token_dims[i], st.downsample_ratios[i],
                                      st.kernel_size[i], st.RC_heads[i], st.dilations[i], st.RC_op[i],
                                      st.RC_tokens_type[i], st.RC_group[i])
            window = window_size if st.NC_tokens_type[i] == "window" else None
            ncs = [NormalCell(st.token_dims[i],
                              TokenAttention(st.token_dims[i], st.token_dims[i], st.NC_heads[i], qkv_bias, qk_scale,
                                             attn_drop_rate, drop_rate, window_size=window),
                              mlp_ratio, drop_rate, rate, norm_layer, st.NC_group[i], cpe=False)
                   for rate in drop_path_rates[i]]
            layers.append(ViTAEStage(rc, ncs, use_checkpoint))
            in_dim = st.token_dims[i]
        self._setup(layers, st.downsample_ratios, out_indices, frozen_stages, load_ema)

    @staticmethod
    def _reduction_cell(in_chans, embed_dims, token_dims, ratio, kernel_size, heads, dilations, op, tokens_type,
                        group) -> ReductionCell:
        prm = PRM(kernel_size, ratio, dilations, in_chans, embed_dims, op)
        windowed = tokens_type == "window"
        attention = TokenAttention(prm.out_chans, token_dims, heads, qkv_bias=windowed,
                                   window_size=RC_WINDOW_SIZE if windowed else None, value_skip=not windowed)
        return ReductionCell(build_pcm((in_chans, embed_dims, embed_dims, token_dims), pcm_strides(ratio), group), prm,
                             nn.LayerNorm(prm.out_chans), attention, nn.LayerNorm(token_dims),
                             Mlp(token_dims, token_dims, token_dims), nested=True)


@register_checkpoint_converter(ViTAEv2)
def convert_vitaev2_checkpoint(checkpoint, model, logger):
    """Official ViTAEv2 checkpoints (``state_dict_ema`` ...) -> our keys.

    ``head.*`` and the classification window ``relative_position_index`` buffers are ignored and logged.
    """
    return convert_official_vitae_checkpoint(checkpoint, model, logger)
