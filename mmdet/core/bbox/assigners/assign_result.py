"""``AssignResult``: which ground truth (if any) each box was assigned to."""
from __future__ import annotations

import torch


class AssignResult:
    """Result of a box assigner.

    Attributes:
        num_gts: number of ground-truth boxes considered.
        gt_inds: ``(N,)`` int64 per box: ``0`` negative, ``-1`` ignored, ``i > 0`` assigned to gt ``i - 1``.
        max_overlaps: ``(N,)`` best IoU of each box with any gt.
        labels: ``(N,)`` int64 label of the assigned gt (``-1`` when not positive), or None.
    """

    def __init__(self, num_gts: int, gt_inds: torch.Tensor, max_overlaps: torch.Tensor,
                 labels: torch.Tensor | None = None):
        self.num_gts = num_gts
        self.gt_inds = gt_inds
        self.max_overlaps = max_overlaps
        self.labels = labels
        self._extra_properties: dict = {}

    @property
    def num_preds(self) -> int:
        """Number of assigned boxes."""
        return len(self.gt_inds)

    def set_extra_property(self, key: str, value) -> None:
        if key in self.info:
            raise KeyError(f"AssignResult already has a property {key!r}")
        self._extra_properties[key] = value

    def get_extra_property(self, key: str):
        return self._extra_properties.get(key, None)

    @property
    def info(self) -> dict:
        """All attributes as a dict."""
        basic = {"num_gts": self.num_gts, "num_preds": self.num_preds, "gt_inds": self.gt_inds,
                 "max_overlaps": self.max_overlaps, "labels": self.labels}
        basic.update(self._extra_properties)
        return basic

    def add_gt_(self, gt_labels: torch.Tensor) -> None:
        """Prepend the gts themselves as boxes assigned to themselves (IoU 1), as ``add_gt_as_proposals`` does.

        Args:
            gt_labels: ``(G,)`` labels of the gts, in gt order.
        """
        self_inds = torch.arange(1, len(gt_labels) + 1, dtype=torch.long, device=gt_labels.device)
        self.gt_inds = torch.cat([self_inds, self.gt_inds])
        self.max_overlaps = torch.cat([self.max_overlaps.new_ones(len(gt_labels)), self.max_overlaps])
        if self.labels is not None:
            self.labels = torch.cat([gt_labels, self.labels])

    def __repr__(self) -> str:
        parts = [f"num_gts={self.num_gts}", f"gt_inds.shape={tuple(self.gt_inds.shape)}",
                 f"max_overlaps.shape={tuple(self.max_overlaps.shape)}",
                 f"labels.shape={None if self.labels is None else tuple(self.labels.shape)}"]
        return f"<AssignResult({', '.join(parts)})>"
