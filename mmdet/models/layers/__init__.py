from .transformer import (DropPath, Mlp, drop_path, pad_to_multiple, relative_position_index,
                          resize_relative_position_table, window_partition, window_reverse)

__all__ = ["DropPath", "Mlp", "drop_path", "pad_to_multiple", "relative_position_index",
           "resize_relative_position_table", "window_partition", "window_reverse"]
