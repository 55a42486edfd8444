from .logger import get_root_logger, print_log

__all__ = ["get_root_logger", "print_log"]
