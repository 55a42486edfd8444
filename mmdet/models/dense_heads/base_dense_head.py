"""``BaseDenseHead`` (mmdetection 2.28): shared train/test plumbing of dense (per-location) heads."""
from __future__ import annotations

from abc import ABCMeta, abstractmethod

import torch
from torch import nn

from mmdet.core.post_processing import merge_aug_proposals
from mmdet.core.utils import select_single_mlvl


class BaseDenseHead(nn.Module, metaclass=ABCMeta):
    """Base of dense heads.

    Subclasses provide ``forward(feats) -> (cls_scores, bbox_preds)`` (lists over levels of
    ``(B, A*C, H_l, W_l)`` / ``(B, A*4, H_l, W_l)``), ``loss(...)``, ``_get_bboxes_single(...)`` and a
    ``prior_generator``.
    """

    def __init__(self, init_cfg: dict | None = None):
        super().__init__()
        self.init_cfg = init_cfg

    @abstractmethod
    def loss(self, **kwargs):
        """Losses of the head outputs."""

    @abstractmethod
    def _get_bboxes_single(self, cls_score_list, bbox_pred_list, score_factor_list, mlvl_priors, img_meta, cfg,
                           rescale=False, with_nms=True, **kwargs):
        """Boxes of one image from its per-level outputs."""

    def get_bboxes(self, cls_scores: list[torch.Tensor], bbox_preds: list[torch.Tensor],
                   score_factors: list[torch.Tensor] | None = None, img_metas: list[dict] | None = None,
                   cfg: dict | None = None, rescale: bool = False, with_nms: bool = True, **kwargs) -> list:
        """Boxes of every image of the batch (outputs are detached first).

        Args:
            cls_scores, bbox_preds: per level ``(B, A*C, H_l, W_l)`` and ``(B, A*4, H_l, W_l)``.
            score_factors: optional per level ``(B, A, H_l, W_l)`` (e.g. centerness).
            img_metas: per image meta dicts (``img_shape``, ``scale_factor``, ...).
            cfg: test config; ``self.test_cfg`` when None.

        Returns:
            one entry per image (for the RPN a ``(K, 5)`` tensor ``[x1, y1, x2, y2, score]``).
        """
        if len(cls_scores) != len(bbox_preds):
            raise ValueError(f"get_bboxes: {len(cls_scores)} score levels but {len(bbox_preds)} box levels")
        if score_factors is not None and len(score_factors) != len(cls_scores):
            raise ValueError(f"get_bboxes: {len(score_factors)} score-factor levels for {len(cls_scores)} levels")
        cls_scores = [s.float() for s in cls_scores]  # post-processing runs in float32 (mmdet force_fp32)
        bbox_preds = [p.float() for p in bbox_preds]
        num_levels = len(cls_scores)
        featmap_sizes = [cls_scores[i].shape[-2:] for i in range(num_levels)]
        mlvl_priors = self.prior_generator.grid_priors(featmap_sizes, dtype=cls_scores[0].dtype,
                                                       device=cls_scores[0].device)
        results = []
        for img_id, img_meta in enumerate(img_metas):
            score_factor_list = (select_single_mlvl(score_factors, img_id) if score_factors is not None
                                 else [None] * num_levels)
            results.append(self._get_bboxes_single(select_single_mlvl(cls_scores, img_id),
                                                   select_single_mlvl(bbox_preds, img_id), score_factor_list,
                                                   mlvl_priors, img_meta, cfg, rescale, with_nms, **kwargs))
        return results

    def forward_train(self, x: tuple[torch.Tensor, ...], img_metas: list[dict], gt_bboxes: list[torch.Tensor],
                      gt_labels: list[torch.Tensor] | None = None, gt_bboxes_ignore: list[torch.Tensor] | None = None,
                      proposal_cfg: dict | None = None, **kwargs):
        """Forward, losses, and (with ``proposal_cfg``) proposals for the next stage.

        Args:
            x: per level features ``(B, C, H_l, W_l)``.
            gt_bboxes: per image ``(G_i, 4)``.
            gt_labels: per image ``(G_i,)`` (None for the class-agnostic RPN).

        Returns:
            ``losses`` dict, or ``(losses, proposal_list)`` when ``proposal_cfg`` is given.
        """
        outs = self(x)
        loss_inputs = outs + ((gt_bboxes, img_metas) if gt_labels is None else (gt_bboxes, gt_labels, img_metas))
        losses = self.loss(*loss_inputs, gt_bboxes_ignore=gt_bboxes_ignore)
        if proposal_cfg is None:
            return losses
        return losses, self.get_bboxes(*outs, img_metas=img_metas, cfg=proposal_cfg)

    def simple_test(self, feats, img_metas, rescale: bool = False):
        """Test without augmentation: per image ``(dets, labels)`` (see ``get_bboxes``)."""
        return self.get_bboxes(*self(feats), img_metas=img_metas, rescale=rescale)

    def simple_test_rpn(self, x: tuple[torch.Tensor, ...], img_metas: list[dict]) -> list[torch.Tensor]:
        """Proposals of every image: ``[(K_i, 5)]`` in resized-image coordinates."""
        return self.get_bboxes(*self(x), img_metas=img_metas)

    def aug_test_rpn(self, feats: list[tuple[torch.Tensor, ...]], img_metas: list[list[dict]]) -> list[torch.Tensor]:
        """Proposals merged over test-time augmentations.

        Args:
            feats: per augmentation the per-level features.
            img_metas: per augmentation the per-image metas.

        Returns:
            per image ``(K, 5)`` proposals in original-image coordinates (see ``merge_aug_proposals``).
        """
        samples_per_gpu = len(img_metas[0])
        aug_proposals = [[] for _ in range(samples_per_gpu)]
        for x, img_meta in zip(feats, img_metas):
            for i, proposals in enumerate(self.simple_test_rpn(x, img_meta)):
                aug_proposals[i].append(proposals)
        aug_img_metas = [[metas[i] for metas in img_metas] for i in range(samples_per_gpu)]
        return [merge_aug_proposals(proposals, metas, self.test_cfg)
                for proposals, metas in zip(aug_proposals, aug_img_metas)]
