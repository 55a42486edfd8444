"""Pipeline-config helpers (mmdetection 2.x ``mmdet.datasets.utils``)."""
from __future__ import annotations

import copy
import warnings

from mmdet.registry import PIPELINES

from .pipelines import LoadAnnotations, LoadImageFromFile


def replace_ImageToTensor(pipelines: list[dict]) -> list[dict]:  # noqa: N802 - mmdet's public name
    """Copy of a test pipeline with every ``ImageToTensor`` (also inside ``MultiScaleFlipAug``) replaced by
    ``DefaultFormatBundle``, so images of a batch > 1 are padded to a common size by ``collate``."""
    pipelines = copy.deepcopy(pipelines)
    for i, step in enumerate(pipelines):
        if step["type"] == "MultiScaleFlipAug":
            if "transforms" not in step:
                raise KeyError("MultiScaleFlipAug config has no 'transforms'")
            step["transforms"] = replace_ImageToTensor(step["transforms"])
        elif step["type"] == "ImageToTensor":
            warnings.warn('"ImageToTensor" is replaced by "DefaultFormatBundle" for batch inference; replace it '
                          'in the test pipeline of your config to silence this warning', UserWarning)
            pipelines[i] = {"type": "DefaultFormatBundle"}
    return pipelines


def get_loading_pipeline(pipeline: list[dict]) -> list[dict]:
    """The image- and annotation-loading steps of a pipeline config (exactly these two are required)."""
    loading = [cfg for cfg in pipeline if PIPELINES.get(cfg["type"]) in (LoadImageFromFile, LoadAnnotations)]
    if len(loading) != 2:
        raise ValueError("the data pipeline must include LoadImageFromFile and LoadAnnotations, got "
                         f"{[cfg['type'] for cfg in pipeline]}")
    return loading
