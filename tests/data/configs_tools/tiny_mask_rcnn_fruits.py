# A tiny Mask R-CNN (ResNet-18 at 1/4 width, 32-channel FPN and heads) on data/fruits_nuts at 320x240, for
# fast tests of the analysis tools (get_flops, benchmark, browse_dataset). Paths are relative to this file.
_base_ = '../../../configs/mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py'
data_root = '{{ fileDirname }}/../../../data/fruits_nuts/'
classes = ('date', 'fig', 'hazelnut')
model = dict(
    backbone=dict(depth=18, base_channels=16, frozen_stages=-1, init_cfg=None),
    neck=dict(in_channels=[16, 32, 64, 128], out_channels=32),
    rpn_head=dict(in_channels=32, feat_channels=32),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=32),
        bbox_head=dict(in_channels=32, fc_out_channels=64, num_classes=3),
        mask_roi_extractor=dict(out_channels=32),
        mask_head=dict(num_convs=2, in_channels=32, conv_out_channels=32, num_classes=3)),
    test_cfg=dict(rpn=dict(nms_pre=200, max_per_img=100), rcnn=dict(max_per_img=20)))
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=(320, 240), keep_ratio=True),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size_divisor=32),
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='MultiScaleFlipAug', img_scale=(320, 240), flip=False,
         transforms=[
             dict(type='Resize', keep_ratio=True),
             dict(type='RandomFlip'),
             dict(type='Normalize', **img_norm_cfg),
             dict(type='Pad', size_divisor=32),
             dict(type='ImageToTensor', keys=['img']),
             dict(type='Collect', keys=['img']),
         ])
]
data = dict(
    samples_per_gpu=1,
    workers_per_gpu=0,
    train=dict(classes=classes, ann_file=data_root + 'trainval.json', img_prefix=data_root + 'images/',
               pipeline=train_pipeline),
    val=dict(classes=classes, ann_file=data_root + 'trainval.json', img_prefix=data_root + 'images/',
             pipeline=test_pipeline),
    test=dict(classes=classes, ann_file=data_root + 'trainval.json', img_prefix=data_root + 'images/',
              pipeline=test_pipeline))
