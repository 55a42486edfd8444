"""ViTAEv2*+VSA detection backbone (``type='ViTAEv2_VSA'``), state_dict-compatible with the official code.

Every reduction and normal cell uses varied-size window attention
(:class:`~mmdet.models.layers.vitae_cells.VSAWindowAttention`) with a relative-position bias,
optionally preceded by a depthwise 7x7 conditional position encoding (``cpe``) that is added
before ``norm1`` but not to the residual. ``wide_pcm`` widens the reduction-cell PCM to
``2 * token_dims`` (the 48M model). Upstream quirks kept: attention scale from the INPUT width,
offsets divided by ``(h // 7, w // 7)`` applied to (x, y), q/k/v computed unpadded then
zero-padded, no attention dropout, the PRM ``+1`` padding when the construction-time
``img_size`` is not divisible by the stage ratio, the stochastic-depth slicing. Deliberate
differences: maps smaller than 7 px no longer divide by zero (the window count is taken as 1),
``out_indices`` and ``frozen_stages`` work, checkpoint recomputation keeps BN stats.
"""
from __future__ import annotations

from functools import partial

from torch import nn

from mmdet.engine.checkpoint import register_checkpoint_converter
from mmdet.registry import BACKBONES

from ..layers.transformer import Mlp
from ..layers.vitae_cells import (PRM, NormalCell, ReductionCell, ViTAEStage, ViTAEv2Base, VSAWindowAttention,
                                  build_cpe, build_pcm, convert_official_vitae_checkpoint, expand_stage_args,
                                  pcm_strides, stage_drop_path_rates)

RC_WINDOW_SIZE = 7  # upstream never passes window_size to the reduction cells


@BACKBONES.register_module()
class ViTAEv2_VSA(ViTAEv2Base):
    """ViTAEv2 with varied-size window attention (official constructor arguments).

    Only ``'VSA'`` token types are supported (upstream's other branches reference attributes
    the class never defines). Forward: ``(B, in_chans, H, W)`` with H, W multiples of 32 ->
    tuple of ``(B, token_dims[i], H / s_i, W / s_i)`` for ``i in out_indices``.
    """

    def __init__(self, in_chans=3, img_size=224, embed_dims=64, token_dims=64, downsample_ratios=[4, 2, 2, 2],
                 kernel_size=[7, 3, 3, 3], RC_heads=[1, 1, 1, 1], NC_heads=4,
                 dilations=[[1, 2, 3, 4], [1, 2, 3], [1, 2], [1, 2]], RC_op='cat', RC_tokens_type='VSA',
                 NC_tokens_type='VSA', RC_group=[1, 1, 1, 1], NC_group=[1, 32, 64, 64], NC_depth=[2, 2, 6, 2],
                 mlp_ratio=4., qkv_bias=True, qk_scale=None, drop_rate=0., attn_drop_rate=0., drop_path_rate=0.,
                 norm_layer=partial(nn.LayerNorm, eps=1e-6), stages=4, window_size=7, out_indices=(0, 1, 2, 3),
                 frozen_stages=-1, use_checkpoint=False, load_ema=True, wide_pcm=False, cpe=False):
        super().__init__()
        hint = "use 'VSA' (or type='ViTAEv2' for window/transformer cells)"
        st = expand_stage_args("ViTAEv2_VSA", stages, ("VSA",), hint, locals())
        self.use_checkpoint = use_checkpoint
        drop_path_rates = stage_drop_path_rates(drop_path_rate, st.NC_depth[:stages])

        layers, in_dim = [], in_chans
        for i in range(stages):
            ratio = st.downsample_ratios[i]
            if ratio <= 1:
                raise ValueError("ViTAEv2_VSA: every stage needs downsample_ratios > 1 (a reduction cell)")
            prm = PRM(st.kernel_size[i], ratio, st.dilations[i], in_dim, st.embed_dims[i], st.RC_op[i],
                      extra_padding=img_size % ratio != 0)
            pcm_hidden = 2 * st.token_dims[i] if wide_pcm else st.embed_dims[i]
            dim = st.token_dims[i]
            rc = ReductionCell(
                build_pcm((in_dim, pcm_hidden, pcm_hidden, dim), pcm_strides(ratio), st.RC_group[i]), prm,
                nn.LayerNorm(prm.out_chans),
                VSAWindowAttention(prm.out_chans, st.RC_heads[i], out_dim=dim, window_size=RC_WINDOW_SIZE),
                nn.LayerNorm(dim), Mlp(dim, dim, dim),
                pos=build_cpe(prm.out_chans, RC_WINDOW_SIZE) if cpe else None)
            ncs = [NormalCell(dim,
                              VSAWindowAttention(dim, st.NC_heads[i], out_dim=dim, window_size=window_size,
                                                 attn_drop=attn_drop_rate, proj_drop=drop_rate),
                              mlp_ratio, drop_rate, rate, norm_layer, st.NC_group[i], cpe=cpe, window_size=window_size)
                   for rate in drop_path_rates[i]]
            layers.append(ViTAEStage(rc, ncs, use_checkpoint))
            in_dim = dim
            img_size //= ratio
        self._setup(layers, st.downsample_ratios, out_indices, frozen_stages, load_ema)


@register_checkpoint_converter(ViTAEv2_VSA)
def convert_vitaev2_vsa_checkpoint(checkpoint, model, logger):
    """Official ViTAEv2*+VSA checkpoints -> our keys; ``head.*`` ignored, tables of other window sizes resized."""
    return convert_official_vitae_checkpoint(checkpoint, model, logger)
