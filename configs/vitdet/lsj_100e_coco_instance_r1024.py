# ViTDet large-scale-jitter (LSJ) data + 100-epoch schedule at 1024x1024 (ViTAE-Transformer/ViTDet).
# 25 epochs over RepeatDataset(times=4) = 100 COCO epochs; lr steps after repeat-epochs 22 and 24
# (COCO epochs 88 / 96). Batch 64 = 32 GPUs x 2 images. No model here: the model configs add it.
_base_ = '../_base_/default_runtime.py'

dataset_type = 'CocoDataset'
data_root = 'data/coco/'
img_norm_cfg = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)
image_size = (1024, 1024)
file_client_args = dict(backend='disk')

train_pipeline = [
    dict(type='LoadImageFromFile', file_client_args=file_client_args),
    dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
    dict(type='Resize', img_scale=image_size, ratio_range=(0.1, 2.0), multiscale_mode='range', keep_ratio=True),
    dict(type='RandomCrop', crop_type='absolute_range', crop_size=image_size, recompute_bbox=True,
         allow_negative_crop=True),
    dict(type='FilterAnnotations', min_gt_bbox_wh=(1e-2, 1e-2)),
    dict(type='RandomFlip', flip_ratio=0.5),
    dict(type='Normalize', **img_norm_cfg),
    dict(type='Pad', size=image_size),  # fixed 1024x1024 padding (+0.5 mAP or more per the upstream note)
    dict(type='DefaultFormatBundle'),
    dict(type='Collect', keys=['img', 'gt_bboxes', 'gt_labels', 'gt_masks']),
]
test_pipeline = [
    dict(type='LoadImageFromFile', file_client_args=file_client_args),
    dict(type='MultiScaleFlipAug', img_scale=(1024, 1024), flip=False,
         transforms=[
             dict(type='Resize', keep_ratio=True),
             dict(type='RandomFlip'),
             dict(type='Normalize', **img_norm_cfg),
             dict(type='Pad', size_divisor=1024),
             dict(type='ImageToTensor', keys=['img']),
             dict(type='Collect', keys=['img']),
         ]),
]
data = dict(
    samples_per_gpu=2,
    workers_per_gpu=2,
    train=dict(
        type='RepeatDataset',
        times=4,  # 2 -> 50e, 16 -> 400e
        dataset=dict(type=dataset_type, ann_file=data_root + 'annotations/instances_train2017.json',
                     img_prefix=data_root + 'train2017/', pipeline=train_pipeline)),
    val=dict(type=dataset_type, ann_file=data_root + 'annotations/instances_val2017.json',
             img_prefix=data_root + 'val2017/', pipeline=test_pipeline),
    test=dict(type=dataset_type, ann_file=data_root + 'annotations/instances_val2017.json',
              img_prefix=data_root + 'val2017/', pipeline=test_pipeline))
evaluation = dict(interval=1, metric=['bbox', 'segm'])

# placeholder optimizer of the upstream base (batch 64); every model config replaces it (_delete_=True)
optimizer = dict(type='SGD', lr=0.1, momentum=0.9, weight_decay=0.00004)
optimizer_config = dict(grad_clip=None)
lr_config = dict(policy='step', warmup='linear', warmup_iters=500, warmup_ratio=0.067, step=[22, 24])
runner = dict(type='EpochBasedRunner', max_epochs=25)
auto_scale_lr = dict(enable=False, base_batch_size=64)
