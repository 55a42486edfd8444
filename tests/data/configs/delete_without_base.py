_base_ = './base/runtime.py'
optimizer = dict(_delete_=True, type='SGD', lr=0.01)
