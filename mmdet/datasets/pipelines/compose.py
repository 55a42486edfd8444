"""``Compose``: run a list of transforms (configs or callables) in order; None from one stops the chain."""
from __future__ import annotations

from mmdet.engine.registry import build_from_cfg
from mmdet.registry import PIPELINES


@PIPELINES.register_module()
class Compose:
    """Build transforms from their config dicts (``PIPELINES`` registry) and apply them in order."""

    def __init__(self, transforms):
        self.transforms = []
        for t in transforms:
            if isinstance(t, dict):
                self.transforms.append(build_from_cfg(t, PIPELINES))
            elif callable(t):
                self.transforms.append(t)
            else:
                raise TypeError(f"a pipeline step must be a config dict or a callable, got {type(t).__name__}: {t!r}")

    def __call__(self, data: dict):
        for t in self.transforms:
            data = t(data)
            if data is None:
                return None
        return data

    def __repr__(self) -> str:
        inner = "".join(f"\n    {t}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"
