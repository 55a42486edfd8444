# Cascade Mask R-CNN variant of ViTDet-ViTAE-Base-100e.py (same backbone, LSJ data, schedule and SyncBN PCMs).
_base_ = ['./_vitdet_cascade_heads.py']

model = dict(
    type='CascadeRCNN',
    backbone=dict(
        _delete_=True,
        type='ViTAE',
        img_size=1024,
        embed_dim=768,
        depth=12,
        num_heads=12,
        mlp_ratio=4,
        qkv_bias=True,
        qk_scale=None,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.1,
        use_abs_pos_emb=True,
        use_checkpoint=True),
    neck=dict(in_channels=[768, 768, 768, 768]))
syncBN = True
