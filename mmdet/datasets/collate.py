"""Batching of pipeline outputs (mmcv 1.x ``DataContainer`` / ``collate``) and hand-over to the model.

A pipeline wraps each output in a :class:`DataContainer` that says how to batch it: ``stack=True`` tensors
(images) are zero-padded bottom/right to the batch's largest ``H, W`` and stacked; ``cpu_only`` items
(``img_metas``, masks) and other items (boxes, labels) stay per-sample lists. :func:`collate` batches in
chunks of ``samples_per_gpu`` (one chunk per GPU of a non-distributed multi-GPU loader, as mmcv).
:func:`unwrap_batch` turns a collated batch into the keyword arguments an mmdetection 2.x model receives.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch.utils.data.dataloader import default_collate


class DataContainer:
    """A pipeline output plus how to batch it.

    Args:
        data: a tensor, a meta dict, a mask structure, ...
        stack: stack the tensors of a batch (after padding the last ``pad_dims`` dims to the batch max).
        padding_value: value used for that padding.
        cpu_only: never moved to a device (metas, masks).
        pad_dims: number of trailing dims to pad (2: H, W), or None to stack without padding.
    """

    def __init__(self, data, stack: bool = False, padding_value=0, cpu_only: bool = False, pad_dims: int | None = 2):
        if pad_dims not in (None, 1, 2, 3):
            raise ValueError(f"DataContainer: pad_dims must be None, 1, 2 or 3, got {pad_dims}")
        self._data = data
        self._stack = stack
        self._padding_value = padding_value
        self._cpu_only = cpu_only
        self._pad_dims = pad_dims

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.data!r})"

    def __len__(self) -> int:
        return len(self._data)

    @property
    def data(self):
        return self._data

    @property
    def datatype(self):
        return type(self._data) if not isinstance(self._data, torch.Tensor) else self._data.type()

    @property
    def cpu_only(self) -> bool:
        return self._cpu_only

    @property
    def stack(self) -> bool:
        return self._stack

    @property
    def padding_value(self):
        return self._padding_value

    @property
    def pad_dims(self) -> int | None:
        return self._pad_dims

    def size(self, *args, **kwargs):
        return self._data.size(*args, **kwargs)

    def dim(self) -> int:
        return self._data.dim()


def _pad_and_stack(samples: list[DataContainer]) -> torch.Tensor:
    """Stack the tensors of ``samples``, padding their last ``pad_dims`` dims (bottom/right) to the max."""
    first = samples[0]
    tensors = [s.data for s in samples]
    if first.pad_dims is None:
        return default_collate(tensors)
    lead = first.dim() - first.pad_dims
    if lead < 0:
        raise ValueError(f"collate: a {first.dim()}-d tensor cannot be padded in {first.pad_dims} dims")
    for t in tensors:
        if t.shape[:lead] != first.data.shape[:lead]:
            raise ValueError(f"collate: stacked tensors differ in a non-padded dim: {tuple(t.shape)} vs "
                             f"{tuple(first.data.shape)}")
    max_tail = [max(t.shape[d] for t in tensors) for d in range(lead, first.dim())]
    out = tensors[0].new_full((len(tensors), *first.data.shape[:lead], *max_tail), first.padding_value)
    for i, t in enumerate(tensors):
        out[(i, ...) + tuple(slice(0, n) for n in t.shape[lead:])] = t
    return out


def collate(batch: Sequence, samples_per_gpu: int = 1):
    """Batch a list of samples; containers are batched per ``samples_per_gpu`` chunk (mmcv ``collate``).

    Returns the same structure as one sample, where each :class:`DataContainer` now holds a list with one
    entry per chunk: a stacked ``(B, ...)`` tensor for ``stack=True``, else a list of the chunk's items.
    Lists/tuples are batched element-wise, dicts key-wise, anything else with ``default_collate``.
    """
    if not isinstance(batch, Sequence):
        raise TypeError(f"collate expects a sequence of samples, got {type(batch).__name__}")
    first = batch[0]
    chunks = [batch[i:i + samples_per_gpu] for i in range(0, len(batch), samples_per_gpu)]
    if isinstance(first, DataContainer):
        if first.stack and not first.cpu_only:
            stacked = [_pad_and_stack(chunk) for chunk in chunks]
        else:
            stacked = [[s.data for s in chunk] for chunk in chunks]
        return DataContainer(stacked, first.stack, first.padding_value, cpu_only=first.cpu_only,
                             pad_dims=first.pad_dims)
    if isinstance(first, Sequence) and not isinstance(first, (str, bytes)):
        return [collate(list(samples), samples_per_gpu) for samples in zip(*batch)]
    if isinstance(first, Mapping):
        return {key: collate([d[key] for d in batch], samples_per_gpu) for key in first}
    return default_collate(batch)


def _to_device(obj, device):
    if isinstance(obj, torch.Tensor):
        return obj.to(device, non_blocking=True)
    return obj


def _unwrap_container(dc: DataContainer, device):
    chunks = dc.data
    if dc.stack and not dc.cpu_only:
        if len(chunks) == 1:
            return chunks[0].to(device, non_blocking=True)
        # several chunks (a non-distributed multi-GPU loader): re-pad to a common size
        tails = [max(c.shape[d] for c in chunks) for d in range(2, chunks[0].dim())]
        merged = chunks[0].new_full((sum(len(c) for c in chunks), chunks[0].shape[1], *tails), dc.padding_value)
        start = 0
        for c in chunks:
            merged[(slice(start, start + len(c)), slice(None)) + tuple(slice(0, n) for n in c.shape[2:])] = c
            start += len(c)
        return merged.to(device, non_blocking=True)
    items = [item for chunk in chunks for item in chunk]
    return items if dc.cpu_only else [_to_device(item, device) for item in items]


def unwrap_batch(batch, device="cpu"):
    """Collated batch -> the keyword arguments of an mmdetection 2.x model (what mmcv's scatter produced).

    * ``img`` (stacked container) -> ``Tensor (B, 3, H, W)`` on ``device``;
    * ``img_metas`` -> ``list[dict]``; ``gt_bboxes`` / ``gt_labels`` -> ``list[Tensor]`` on ``device``;
      ``gt_masks`` -> list of mask structures (kept on the CPU);
    * a multi-augmentation test batch (lists per augmentation) -> ``img: list[Tensor (B, 3, H, W)]``,
      ``img_metas: list[list[dict]]``.
    """
    if isinstance(batch, DataContainer):
        return _unwrap_container(batch, device)
    if isinstance(batch, Mapping):
        return {k: unwrap_batch(v, device) for k, v in batch.items()}
    if isinstance(batch, list):
        return [unwrap_batch(v, device) for v in batch]
    return _to_device(batch, device)
