# ViTDet ViTAE-B (MAE) Mask R-CNN, LSJ 1024, 100 epochs: 51.6 box / 45.8 mask mAP (upstream log).
# The logged run checkpointed every block and converted the PCM BatchNorms to SyncBN.
_base_ = ['./_vitdet_mask_rcnn_heads.py']

model = dict(
    type='MaskRCNN',
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
