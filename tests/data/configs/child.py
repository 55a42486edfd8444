_base_ = ['./base/model.py', './base/schedule.py', './base/runtime.py', './base/data.py']
model = dict(
    backbone=dict(depth=101),
    neck=dict(in_channels=[64, 128, 256, 512]),
    roi_head=dict(bbox_head=[dict(type='ConvFCBBoxHead', num_classes=80) for _ in range(3)]))
optimizer = dict(_delete_=True, type='AdamW', lr=0.0001, betas=(0.9, 0.999), weight_decay=0.05,
                 paramwise_cfg=dict(custom_keys={'norm': dict(decay_mult=0.)}))
lr_config = dict(step=[27, 33])
runner = dict(max_epochs=36)
# re-binding a helper variable does not change data.train.pipeline, which the base evaluated
train_pipeline = [dict(type='LoadImageFromFile')]
find_unused_parameters = True
