from __future__ import annotations

from abc import ABCMeta, abstractmethod


class BaseBBoxCoder(metaclass=ABCMeta):
    """Base of box coders: ``encode(bboxes, gt_bboxes) -> targets``, ``decode(bboxes, preds) -> boxes``."""

    def __init__(self, **kwargs):
        pass

    @abstractmethod
    def encode(self, bboxes, gt_bboxes):
        """Regression targets that turn ``bboxes`` into ``gt_bboxes``."""

    @abstractmethod
    def decode(self, bboxes, bboxes_pred):
        """Boxes obtained by applying ``bboxes_pred`` to ``bboxes``."""
