# Cascade Mask R-CNN variant of ViTDet-ViTAE-Small-100e.py (same backbone, LSJ data, schedule, num_layers=17).
_base_ = ['./_vitdet_cascade_heads.py']

model = dict(
    type='CascadeRCNN',
    backbone=dict(
        _delete_=True,
        type='ViTAE_S',
        img_size=1024,
        RC_tokens_type=['performer', 'performer', 'performer_less'],
        NC_tokens_type=['transformer', 'transformer', 'transformer'],
        stages=3,
        embed_dims=[64, 64, 192],
        token_dims=[96, 192, 384],
        out_indices=(3,),
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.1,
        window_size=(14, 14),
        use_checkpoint=False,
        load_ema=True,
        downsample_ratios=[4, 2, 2],
        NC_depth=[0, 0, 14],
        NC_heads=[1, 1, 6],
        RC_heads=[1, 1, 1],
        NC_group=[1, 1, 96],
        RC_group=[1, 1, 1],
        mlp_ratio=3.,
        globalBlock=[2, 5, 8, 13]),
    neck=dict(in_channels=[384, 384, 384, 384]))
optimizer = dict(paramwise_cfg=dict(num_layers=17, layer_sep=[0, 1, 2]))
