# As the 1x config, 36 epochs with LR steps at 27 and 33.
_base_ = './cascade_mask_rcnn_r50_fpn_mstrain_480-800_giou_4conv1f_adamw_1x_coco.py'

lr_config = dict(step=[27, 33])
runner = dict(type='EpochBasedRunner', max_epochs=36)
