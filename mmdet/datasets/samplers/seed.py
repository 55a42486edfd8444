"""A seed shared by all ranks."""
from __future__ import annotations

import numpy as np

from mmdet.engine.dist import broadcast_object


def sync_random_seed(seed: int | None = None) -> int:
    """``seed`` itself, or (None) a random seed drawn on rank 0 and broadcast, so all ranks agree."""
    if seed is not None:
        return int(seed)
    return int(broadcast_object(int(np.random.randint(2 ** 31))))
