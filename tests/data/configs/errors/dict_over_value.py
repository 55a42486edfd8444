_base_ = '../base/runtime.py'
log_level = dict(level='INFO')
