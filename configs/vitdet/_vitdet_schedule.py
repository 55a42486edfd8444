# ViTDet optimisation on top of the LSJ base: AdamW (lr 1e-4, wd 0.1) with layer-wise lr decay 0.7
# (LayerDecayOptimizerConstructor: lr scale 0.7 ** (num_layers + 1 - layer_id); weight decay 0 for
# 1-D params, biases, pos_embed and rel_pos tables; custom_keys only name the groups), 250 warmup iters.
_base_ = ['./lsj_100e_coco_instance_r1024.py']

optimizer = dict(
    _delete_=True,
    type='AdamW',
    lr=0.0001,
    betas=(0.9, 0.999),
    weight_decay=0.1,
    constructor='LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(
        num_layers=12,
        layer_decay_rate=0.7,
        custom_keys={
            'bias': dict(decay_multi=0.),
            'pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.),
            'rel_pos_h': dict(decay_mult=0.),
            'rel_pos_w': dict(decay_mult=0.),
        }))
lr_config = dict(warmup_iters=250)  # 250 iters at batch 64 == 1000 at batch 16
