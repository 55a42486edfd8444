filename = 'my_config.py'
