"""Post-processing of mmdetection 2.x: NMS and test-time-augmentation merging."""
from .bbox_nms import batched_nms, multiclass_nms
from .merge_augs import (merge_aug_bboxes, merge_aug_masks, merge_aug_proposals, merge_aug_scores,
                         upgrade_rpn_test_cfg)

__all__ = ["batched_nms", "multiclass_nms", "merge_aug_proposals", "merge_aug_bboxes", "merge_aug_scores",
           "merge_aug_masks", "upgrade_rpn_test_cfg"]
