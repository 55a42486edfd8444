# ViTDet Mask R-CNN on the stock mmdetection 2.x mask_rcnn_r50_fpn model: LayerNorm FPN without the
# top-down path, 2-conv LN RPN, Shared4Conv1FC LN box head, LN mask head (train/test cfgs stock).
# The model configs set the backbone (replacing ResNet-50) and the FPN input channels.
_base_ = ['../_base_/models/mask_rcnn_r50_fpn.py', './_vitdet_schedule.py']

norm_cfg = dict(type='LN', requires_grad=True)
head_norm_cfg = dict(type='LN', requires_grad=True)
pretrained = None  # --cfg-options model.pretrained=<MAE / ImageNet checkpoint>

model = dict(
    pretrained=pretrained,
    neck=dict(type='FPN', out_channels=256, norm_cfg=norm_cfg, use_residual=False, num_outs=5),
    rpn_head=dict(num_convs=2, norm_cfg=head_norm_cfg),
    roi_head=dict(
        bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=head_norm_cfg),
        mask_head=dict(norm_cfg=head_norm_cfg)))
