# ViTDet ViT-B (MAE) Mask R-CNN, LSJ 1024, 100 epochs: 51.1 box / 45.5 mask mAP (upstream log, 32x2 GPUs).
_base_ = ['./_vitdet_mask_rcnn_heads.py']

model = dict(
    type='MaskRCNN',
    backbone=dict(
        _delete_=True,
        type='ViT',
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
        use_abs_pos_emb=True),
    neck=dict(in_channels=[768, 768, 768, 768]))
