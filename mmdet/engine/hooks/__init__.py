from .hook import PRIORITIES, Hook, get_priority

__all__ = ["Hook", "PRIORITIES", "get_priority"]
