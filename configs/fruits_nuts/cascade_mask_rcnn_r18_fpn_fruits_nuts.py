# Cascade Mask R-CNN R18-FPN on fruits_nuts: the stock three-stage cascade
# (configs/_base_/models/cascade_mask_rcnn_r50_fpn.py) with the demo's R18 GroupNorm backbone, 64-channel neck and
# heads, data and CPU schedule (configs/fruits_nuts/fruits_nuts_instance_cpu.py).
_base_ = [
    '../_base_/models/cascade_mask_rcnn_r50_fpn.py',
    './fruits_nuts_instance_cpu.py',
]
width = 64
model = dict(
    backbone=dict(
        depth=18,
        frozen_stages=-1,
        norm_cfg=dict(type='GN', num_groups=32, requires_grad=True),
        norm_eval=False,
        init_cfg=None),
    neck=dict(in_channels=[64, 128, 256, 512], out_channels=width),
    rpn_head=dict(in_channels=width, feat_channels=width),
    roi_head=dict(
        bbox_roi_extractor=dict(out_channels=width),
        bbox_head=[
            dict(type='Shared2FCBBoxHead', in_channels=width, fc_out_channels=256, roi_feat_size=7, num_classes=3,
                 reg_class_agnostic=True,
                 bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.], target_stds=stds),
                 loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
                 loss_bbox=dict(type='SmoothL1Loss', beta=1.0, loss_weight=1.0))
            for stds in ([0.1, 0.1, 0.2, 0.2], [0.05, 0.05, 0.1, 0.1], [0.033, 0.033, 0.067, 0.067])
        ],
        mask_roi_extractor=dict(out_channels=width),
        mask_head=dict(in_channels=width, conv_out_channels=width, num_classes=3)),
    train_cfg=dict(rpn_proposal=dict(nms_pre=1000, max_per_img=500)),
    test_cfg=dict(rpn=dict(nms_pre=500, max_per_img=500), rcnn=dict(max_per_img=50)))
