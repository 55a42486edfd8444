# Mask R-CNN R18-FPN trained from scratch on the embedded fruits_nuts photos (3 classes,
# 14 train / 4 val images, data/fruits_nuts/README.md). Sized for a CPU: 512 px images,
# GroupNorm in the backbone (batch 2 is too small for BatchNorm statistics from scratch).
# The neck and heads are 64 channels wide (256 in the COCO configs) so that a from-scratch run fits in
# about 10 minutes on 2 CPU cores. Used by demo/fruits_nuts_demo.py; `python tools/train.py` runs it too.
# channels_last: NHWC convolutions are faster on CPU (this model, 2 cores: training step 0.569 -> 0.540 s at
# batch 2 x 384x512, inference 0.124 -> 0.106 s per image; docs/benchmarks.md).
_base_ = [
    '../_base_/models/mask_rcnn_r50_fpn.py',
    './fruits_nuts_instance_cpu.py',
]
norm_cfg = dict(type='GN', num_groups=32, requires_grad=True)
width = 64
model = dict(
    channels_last=True,
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=norm_cfg,
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=dict(in_channels=width, fc_out_channels=256, num_classes=3),
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=3)),
    train_cfg=dict(
        rpn_proposal=dict(nms_pre=1000, max_per_img=500),
        rcnn=dict(sampler=dict(num=256))),
    test_cfg=dict(
        rpn=dict(nms_pre=500, max_per_img=500),
        rcnn=dict(max_per_img=50)))
