_base_ = '../../child.py'
model = dict(backbone=dict(_delete_=True, type='SwinTransformer', embed_dims=96))
runner = dict(type='EpochBasedRunnerAmp')
