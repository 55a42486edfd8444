"""Data pipeline transforms, registered in ``mmdet.registry.PIPELINES`` under their mmdetection 2.x names."""
from .auto_augment import AutoAugment
from .compose import Compose
from .formatting import Collect, DefaultFormatBundle, ImageToTensor, ToTensor, to_tensor
from .image_ops import SampleLoadError
from .loading import LoadAnnotations, LoadImageFromFile, LoadImageFromWebcam, LoadProposals
from .test_time_aug import MultiScaleFlipAug
from .transforms import FilterAnnotations, Normalize, Pad, RandomCrop, RandomFlip, Resize

__all__ = [
    "AutoAugment", "Compose", "Collect", "DefaultFormatBundle", "ImageToTensor", "ToTensor", "to_tensor",
    "SampleLoadError", "LoadAnnotations", "LoadImageFromFile", "LoadImageFromWebcam", "LoadProposals", "MultiScaleFlipAug",
    "FilterAnnotations", "Normalize", "Pad", "RandomCrop", "RandomFlip", "Resize",
]
