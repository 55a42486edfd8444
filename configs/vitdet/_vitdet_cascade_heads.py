# ViTDet Cascade Mask R-CNN on the stock mmdetection 2.x cascade_mask_rcnn_r50_fpn model: the ViTDet
# LN FPN / 2-conv LN RPN, and per stage a 4-conv-1-fc LN box head (class-specific regression of decoded
# boxes with GIoU loss 10, stage stds 0.1/0.05/0.033 as the toolbox's cascade 4conv1fc seeds) plus the
# LN mask head (replicated per stage). Stage IoUs 0.5/0.6/0.7 and weights [1, 0.5, 0.25] stay stock.
_base_ = ['../_base_/models/cascade_mask_rcnn_r50_fpn.py', './_vitdet_schedule.py']

norm_cfg = dict(type='LN', requires_grad=True)
head_norm_cfg = dict(type='LN', requires_grad=True)
pretrained = None  # --cfg-options model.pretrained=<MAE / ImageNet checkpoint>

stage_bbox_head = dict(
    type='ConvFCBBoxHead', num_shared_convs=4, num_shared_fcs=1, in_channels=256, conv_out_channels=256,
    fc_out_channels=1024, roi_feat_size=7, num_classes=80, reg_class_agnostic=False, reg_decoded_bbox=True,
    norm_cfg=head_norm_cfg,
    loss_cls=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0),
    loss_bbox=dict(type='GIoULoss', loss_weight=10.0))

model = dict(
    pretrained=pretrained,
    neck=dict(type='FPN', out_channels=256, norm_cfg=norm_cfg, use_residual=False, num_outs=5),
    rpn_head=dict(num_convs=2, norm_cfg=head_norm_cfg),
    roi_head=dict(
        bbox_head=[
            dict(stage_bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                                  target_stds=[0.1, 0.1, 0.2, 0.2])),
            dict(stage_bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                                  target_stds=[0.05, 0.05, 0.1, 0.1])),
            dict(stage_bbox_head, bbox_coder=dict(type='DeltaXYWHBBoxCoder', target_means=[0., 0., 0., 0.],
                                                  target_stds=[0.033, 0.033, 0.067, 0.067])),
        ],
        mask_head=dict(norm_cfg=head_norm_cfg)))
