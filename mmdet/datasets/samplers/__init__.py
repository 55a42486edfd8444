"""Samplers of the data loaders (mmdetection 2.x)."""
from .distributed_sampler import DistributedSampler
from .group_sampler import DistributedGroupSampler, GroupSampler
from .infinite_sampler import InfiniteBatchSampler, InfiniteGroupBatchSampler
from .seed import sync_random_seed

__all__ = ["DistributedSampler", "DistributedGroupSampler", "GroupSampler", "InfiniteBatchSampler",
           "InfiniteGroupBatchSampler", "sync_random_seed"]
