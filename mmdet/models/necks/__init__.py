"""Necks. Importing registers them under their mmdetection type names."""
from .fpn import FPN

__all__ = ["FPN"]
