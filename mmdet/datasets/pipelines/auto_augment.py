"""``AutoAugment``: apply one randomly chosen policy (a list of transforms) per sample (mmdetection 2.x)."""
from __future__ import annotations

import copy

import numpy as np

from mmdet.registry import PIPELINES

from .compose import Compose


@PIPELINES.register_module()
class AutoAugment:
    """Pick one of ``policies`` uniformly (numpy global RNG) and run its transforms.

    Args:
        policies: list of policies; each policy is a non-empty list of transform config dicts, e.g. the
            seed DETR-style ``[[Resize(11 scales)], [Resize(3 scales), RandomCrop, Resize(override=True)]]``.
    """

    def __init__(self, policies):
        if not (isinstance(policies, list) and policies):
            raise ValueError("AutoAugment: policies must be a non-empty list of policies")
        for policy in policies:
            if not (isinstance(policy, list) and policy and all(isinstance(t, dict) and "type" in t for t in policy)):
                raise ValueError(f"AutoAugment: each policy must be a non-empty list of transform dicts with a "
                                 f"'type', got {policy!r}")
        self.policies = copy.deepcopy(policies)
        self.transforms = [Compose(policy) for policy in self.policies]

    def __call__(self, results: dict):
        return self.transforms[np.random.randint(len(self.transforms))](results)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(policies={self.policies})"
