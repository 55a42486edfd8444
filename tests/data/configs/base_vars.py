_base_ = './base/schedule.py'
base_lr = {{_base_.optimizer.lr}}
steps = {{ _base_.lr_config.step }}
scheduler_copy = dict(cfg={{_base_.lr_config}}, first_step={{_base_.lr_config.step.0}})
