"""``FCNMaskHead``: 28x28 per-class mask logits from 14x14 RoI features, mask targets/loss and the paste of
predicted masks into the image canvas (mmdetection 2.x ``get_seg_masks`` / ``_do_paste_mask`` semantics)."""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.modules.utils import _pair

from mmdet.core.mask.mask_target import mask_target
from mmdet.models.builder import build_loss
from mmdet.models.layers.conv_module import ConvModule, build_conv_layer, build_upsample_layer
from mmdet.registry import HEADS

__all__ = ["FCNMaskHead", "paste_masks_in_image"]

BYTES_PER_FLOAT = 4
GPU_MEM_LIMIT = 1024 ** 3  # 1 GiB paste budget on GPU (mmdet)


def paste_masks_in_image(masks: torch.Tensor, boxes: torch.Tensor, img_h: int, img_w: int,
                         threshold: float) -> torch.Tensor:
    """Paste ``masks (N, 1, m, m)`` (probabilities) at ``boxes (N, 4)`` into ``(N, img_h, img_w)`` canvases.

    Every canvas pixel centre ``(x + 0.5, y + 0.5)`` is mapped to the box's normalised frame
    ``(x + 0.5 - x1) / (x2 - x1) * 2 - 1`` (infinite values from empty boxes -> 0) and sampled with
    ``grid_sample(bilinear, zeros padding, align_corners=False)``. ``threshold >= 0`` gives ``mask >= threshold``
    (bool); a negative threshold gives ``uint8(prob * 255)``. Each chunk of masks is sampled only inside the union
    of its boxes (expanded by 1 px), outside of which every sample is below 0.5. On CPU a chunk is one mask (as
    mmdetection: sampling only each box's own region is 4-10x faster than batching over the union of many boxes);
    on GPU chunks fill a 1 GiB budget. Values do not depend on the chunking.
    """
    device = masks.device
    num = masks.size(0)
    out_dtype = torch.bool if threshold >= 0 else torch.uint8
    canvas = torch.zeros(num, img_h, img_w, device=device, dtype=out_dtype)
    if num == 0:
        return canvas
    if device.type == "cpu":
        num_chunks = num
    else:
        per_mask = img_h * img_w * BYTES_PER_FLOAT * 3  # grid (2 floats) + sampled value per pixel
        num_chunks = min(num, max(1, math.ceil(num * per_mask / GPU_MEM_LIMIT)))
    masks = masks.float()
    for inds in torch.chunk(torch.arange(num, device=device), num_chunks):
        chunk_boxes = boxes[inds].float()
        x0 = int(torch.clamp(chunk_boxes[:, 0].min().floor() - 1, min=0))
        y0 = int(torch.clamp(chunk_boxes[:, 1].min().floor() - 1, min=0))
        x1 = int(torch.clamp(chunk_boxes[:, 2].max().ceil() + 1, max=img_w))
        y1 = int(torch.clamp(chunk_boxes[:, 3].max().ceil() + 1, max=img_h))
        if x1 <= x0 or y1 <= y0:
            continue
        bx0, by0, bx1, by1 = chunk_boxes.split(1, dim=1)  # each (n, 1)
        grid_x = (torch.arange(x0, x1, device=device, dtype=torch.float32) + 0.5 - bx0) / (bx1 - bx0) * 2 - 1
        grid_y = (torch.arange(y0, y1, device=device, dtype=torch.float32) + 0.5 - by0) / (by1 - by0) * 2 - 1
        grid_x = torch.where(torch.isinf(grid_x), torch.zeros_like(grid_x), grid_x)
        grid_y = torch.where(torch.isinf(grid_y), torch.zeros_like(grid_y), grid_y)
        n = inds.numel()
        grid = torch.stack([grid_x[:, None, :].expand(n, y1 - y0, x1 - x0),
                            grid_y[:, :, None].expand(n, y1 - y0, x1 - x0)], dim=3)
        pasted = F.grid_sample(masks[inds], grid, mode="bilinear", padding_mode="zeros", align_corners=False)[:, 0]
        if threshold >= 0:
            pasted = pasted >= threshold
        else:
            pasted = (pasted * 255).to(torch.uint8)
        canvas[inds, y0:y1, x0:x1] = pasted
    return canvas


@HEADS.register_module()
class FCNMaskHead(nn.Module):
    """mmdetection 2.x ``FCNMaskHead``.

    Args:
        num_convs: 3x3 ``ConvModule`` layers (``convs.{i}.conv`` [+ ``.bn`` / ``.gn`` / ``.ln``]), ReLU.
        roi_feat_size, in_channels, conv_kernel_size, conv_out_channels: layer sizes.
        num_classes: output channels (``class_agnostic`` -> 1). No background channel.
        upsample_cfg: ``dict(type='deconv', scale_factor=2)`` (``upsample``: ConvTranspose2d k=s=2, then ReLU),
            ``'nearest'`` / ``'bilinear'`` (``nn.Upsample``) or ``type=None``.
        conv_cfg / norm_cfg: ConvModule configs (``norm_cfg=dict(type='LN')`` for ViTDet).
        predictor_cfg: conv type of ``conv_logits`` (1x1).
        loss_mask: ``CrossEntropyLoss(use_mask=True)``.

    Forward: ``(R, in_channels, 14, 14)`` -> ``(R, num_classes, 28, 28)`` logits.
    """

    def __init__(self, num_convs: int = 4, roi_feat_size: int = 14, in_channels: int = 256,
                 conv_kernel_size: int = 3, conv_out_channels: int = 256, num_classes: int = 80,
                 class_agnostic: bool = False, upsample_cfg: dict = dict(type="deconv", scale_factor=2),
                 conv_cfg: dict | None = None, norm_cfg: dict | None = None, predictor_cfg: dict = dict(type="Conv"),
                 loss_mask: dict = dict(type="CrossEntropyLoss", use_mask=True, loss_weight=1.0),
                 init_cfg: dict | None = None):
        super().__init__()
        self.upsample_cfg = dict(upsample_cfg)
        self.upsample_method = self.upsample_cfg.get("type")
        if self.upsample_method not in (None, "deconv", "nearest", "bilinear"):
            raise ValueError(f"FCNMaskHead upsample_cfg type {self.upsample_method!r} is not supported; use "
                             f"'deconv', 'nearest', 'bilinear' or None")
        self.num_convs = num_convs
        self.roi_feat_size = _pair(roi_feat_size)
        self.in_channels = in_channels
        self.conv_kernel_size = conv_kernel_size
        self.conv_out_channels = conv_out_channels
        self.scale_factor = self.upsample_cfg.pop("scale_factor", None)
        self.num_classes = num_classes
        self.class_agnostic = class_agnostic
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.predictor_cfg = predictor_cfg
        self.init_cfg = init_cfg
        self.loss_mask = build_loss(loss_mask)

        self.convs = nn.ModuleList()
        for i in range(num_convs):
            self.convs.append(ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels,
                                         conv_kernel_size, padding=(conv_kernel_size - 1) // 2, conv_cfg=conv_cfg,
                                         norm_cfg=norm_cfg))
        upsample_in = conv_out_channels if num_convs > 0 else in_channels
        if self.upsample_method is None:
            self.upsample = None
        elif self.upsample_method == "deconv":
            cfg = dict(self.upsample_cfg, in_channels=upsample_in, out_channels=conv_out_channels,
                       kernel_size=self.scale_factor, stride=self.scale_factor)
            self.upsample = build_upsample_layer(cfg)
        else:
            align = None if self.upsample_method == "nearest" else False
            cfg = dict(self.upsample_cfg, scale_factor=self.scale_factor, align_corners=align)
            self.upsample = build_upsample_layer(cfg)
        out_channels = 1 if class_agnostic else num_classes
        logits_in = conv_out_channels if self.upsample_method == "deconv" else upsample_in
        self.conv_logits = build_conv_layer(predictor_cfg, logits_in, out_channels, 1)
        self.relu = nn.ReLU(inplace=True)
        self.debug_imgs = None

    def init_weights(self) -> None:
        """Kaiming-normal (fan_out, relu) for ``upsample`` and ``conv_logits``, zero biases."""
        for m in (self.upsample, self.conv_logits):
            if m is not None and getattr(m, "weight", None) is not None:
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.constant_(m.bias, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for conv in self.convs:
            x = conv(x)
        if self.upsample is not None:
            x = self.upsample(x)
            if self.upsample_method == "deconv":
                x = self.relu(x)
        return self.conv_logits(x)

    def get_targets(self, sampling_results: list, gt_masks: list, rcnn_train_cfg) -> torch.Tensor:
        """``(num_pos_total, mask_size, mask_size)`` binary targets of the positive proposals (see
        :func:`mmdet.core.mask.mask_target.mask_target`)."""
        pos_proposals = [res.pos_bboxes for res in sampling_results]
        pos_assigned_gt_inds = [res.pos_assigned_gt_inds for res in sampling_results]
        return mask_target(pos_proposals, pos_assigned_gt_inds, gt_masks, rcnn_train_cfg)

    def loss(self, mask_pred: torch.Tensor, mask_targets: torch.Tensor, labels: torch.Tensor) -> dict:
        """BCE on each positive's label channel, averaged over all pixels: ``{'loss_mask': tensor}``."""
        if mask_pred.size(0) == 0:
            return dict(loss_mask=mask_pred.sum())
        channel = torch.zeros_like(labels) if self.class_agnostic else labels
        return dict(loss_mask=self.loss_mask(mask_pred, mask_targets, channel))

    def get_seg_masks(self, mask_pred, det_bboxes: torch.Tensor, det_labels: torch.Tensor, rcnn_test_cfg,
                      ori_shape, scale_factor, rescale: bool) -> list[list[np.ndarray]]:
        """Paste one image's masks.

        Args:
            mask_pred: ``(n, C, m, m)`` logits (Tensor) or probabilities (numpy array, e.g. merged TTA masks).
            det_bboxes: ``(n, 4|5)`` boxes the masks belong to; det_labels ``(n,)``.
            rcnn_test_cfg: needs ``mask_thr_binary``.
            ori_shape: ``(h, w[, 3])`` of the original image.
            scale_factor: ``[w, h, w, h]`` (array/tensor) or a float.
            rescale: True -> canvas ``ori_shape`` and boxes divided by ``scale_factor``; False -> canvas
                ``round(ori * scale)`` and boxes as given.

        Returns: per class, a list of ``(H, W)`` bool (uint8 if ``mask_thr_binary < 0``) numpy masks, det order.
        """
        if isinstance(mask_pred, torch.Tensor):
            probs = mask_pred.sigmoid()
        else:
            probs = det_bboxes.new_tensor(mask_pred)
        if not self.class_agnostic:
            probs = probs[torch.arange(probs.size(0), device=probs.device), det_labels][:, None]
        return self.paste_probabilities(probs, det_bboxes, det_labels, rcnn_test_cfg, ori_shape, scale_factor,
                                        rescale)

    def paste_probabilities(self, probs: torch.Tensor, det_bboxes: torch.Tensor, det_labels: torch.Tensor,
                            rcnn_test_cfg, ori_shape, scale_factor, rescale: bool) -> list[list[np.ndarray]]:
        """As :meth:`get_seg_masks` for ``probs (n, 1, m, m)`` already reduced to each detection's channel."""
        bboxes = det_bboxes[:, :4]
        if not isinstance(scale_factor, float):
            scale_factor = (scale_factor.to(bboxes) if isinstance(scale_factor, torch.Tensor)
                            else torch.as_tensor(np.asarray(scale_factor, dtype=np.float32), device=bboxes.device))
        if rescale:
            img_h, img_w = int(ori_shape[0]), int(ori_shape[1])
            bboxes = bboxes / scale_factor
        elif isinstance(scale_factor, float):
            img_h = int(np.round(ori_shape[0] * scale_factor))
            img_w = int(np.round(ori_shape[1] * scale_factor))
        else:
            img_h = int(np.round(ori_shape[0] * float(scale_factor[1])))
            img_w = int(np.round(ori_shape[1] * float(scale_factor[0])))
        masks = paste_masks_in_image(probs, bboxes, img_h, img_w, rcnn_test_cfg["mask_thr_binary"])
        masks_np = masks.cpu().numpy()
        cls_segms: list[list[np.ndarray]] = [[] for _ in range(self.num_classes)]
        for mask, label in zip(masks_np, det_labels.tolist()):
            cls_segms[label].append(mask)
        return cls_segms
