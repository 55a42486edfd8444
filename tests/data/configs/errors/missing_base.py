_base_ = ['../base/runtime.py', '../base/no_such_file.py']
