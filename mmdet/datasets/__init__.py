"""Datasets, pipelines, samplers and loaders (mmdetection 2.x ``mmdet.datasets``)."""
from .builder import build_dataloader, build_dataset, worker_init_fn
from .coco import CocoDataset
from .collate import DataContainer, collate, unwrap_batch
from .custom import CustomDataset, TooManyBadSamplesError
from .dataset_wrappers import ClassBalancedDataset, ConcatDataset, RepeatDataset
from .pipelines import SampleLoadError
from .samplers import DistributedGroupSampler, DistributedSampler, GroupSampler
from .utils import get_loading_pipeline, replace_ImageToTensor

__all__ = [
    "build_dataloader", "build_dataset", "worker_init_fn", "CocoDataset", "DataContainer", "collate",
    "unwrap_batch", "CustomDataset", "TooManyBadSamplesError", "ClassBalancedDataset", "ConcatDataset",
    "RepeatDataset", "SampleLoadError", "DistributedGroupSampler", "DistributedSampler", "GroupSampler",
    "get_loading_pipeline", "replace_ImageToTensor",
]
