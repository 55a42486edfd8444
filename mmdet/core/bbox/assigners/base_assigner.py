from abc import ABCMeta, abstractmethod


class BaseAssigner(metaclass=ABCMeta):
    """Base of assigners: ``assign(bboxes, gt_bboxes, gt_bboxes_ignore=None, gt_labels=None) -> AssignResult``."""

    @abstractmethod
    def assign(self, bboxes, gt_bboxes, gt_bboxes_ignore=None, gt_labels=None):
        """Assign every box to a gt, to background, or to "ignore"."""
