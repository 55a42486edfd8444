optimizer = dict(type='SGD', lr=0.02)
a_only = 1
