import os.path as osp  # modules are not config keys

checkpoint_config = dict(interval=1)
log_config = dict(interval=50, hooks=[dict(type='TextLoggerHook')])
dist_params = dict(backend='nccl')
log_level = 'INFO'
load_from = None
resume_from = None
workflow = [('train', 1)]


def helper(x):  # functions are not config keys
    return x


__private = 1  # dunder-prefixed names are not config keys
