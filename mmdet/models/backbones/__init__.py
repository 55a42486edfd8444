"""Backbones (one file per family). Importing registers them under their mmdetection type names."""
from . import resnet, swin_transformer, swin_visformer, vitaev2, vitaev2_vsa, vitdet  # noqa: F401
