"""``ConvFCBBoxHead`` and its ``Shared2FCBBoxHead`` / ``Shared4Conv1FCBBoxHead`` presets (mmdetection 2.x).

Layout: shared convs -> shared fcs -> (cls convs -> cls fcs -> ``fc_cls``) and (reg convs -> reg fcs -> ``fc_reg``).
Convs are 3x3 ``ConvModule`` (``.conv`` + ``.bn`` / ``.gn`` / ``.ln`` per ``norm_cfg``, ReLU); fcs are Linear + ReLU.
"""
from __future__ import annotations

import torch
from torch import nn

from mmdet.models.layers.conv_module import ConvModule, xavier_init
from mmdet.registry import HEADS

from .bbox_head import BBoxHead

__all__ = ["ConvFCBBoxHead", "Shared2FCBBoxHead", "Shared4Conv1FCBBoxHead"]


@HEADS.register_module()
class ConvFCBBoxHead(BBoxHead):
    """Args: ``num_shared_convs, num_shared_fcs, num_cls_convs, num_cls_fcs, num_reg_convs, num_reg_fcs,
    conv_out_channels=256, fc_out_channels=1024, conv_cfg, norm_cfg, init_cfg`` + :class:`BBoxHead` kwargs.

    Forward: ``(R, in_channels, k, k)`` -> ``cls_score (R, C+1)``, ``bbox_pred (R, 4|4C)``.
    """

    def __init__(self, num_shared_convs: int = 0, num_shared_fcs: int = 0, num_cls_convs: int = 0,
                 num_cls_fcs: int = 0, num_reg_convs: int = 0, num_reg_fcs: int = 0, conv_out_channels: int = 256,
                 fc_out_channels: int = 1024, conv_cfg: dict | None = None, norm_cfg: dict | None = None,
                 init_cfg: dict | None = None, *args, **kwargs):
        super().__init__(*args, init_cfg=init_cfg, **kwargs)
        if num_shared_convs + num_shared_fcs + num_cls_convs + num_cls_fcs + num_reg_convs + num_reg_fcs <= 0:
            raise ValueError("ConvFCBBoxHead needs at least one conv or fc layer")
        if (num_cls_convs > 0 or num_reg_convs > 0) and num_shared_fcs != 0:
            raise ValueError("ConvFCBBoxHead: cls/reg convs cannot follow shared fcs (set num_shared_fcs=0)")
        if not self.with_cls and (num_cls_convs or num_cls_fcs):
            raise ValueError("ConvFCBBoxHead: with_cls=False but cls branch layers were requested")
        if not self.with_reg and (num_reg_convs or num_reg_fcs):
            raise ValueError("ConvFCBBoxHead: with_reg=False but reg branch layers were requested")
        self.num_shared_convs, self.num_shared_fcs = num_shared_convs, num_shared_fcs
        self.num_cls_convs, self.num_cls_fcs = num_cls_convs, num_cls_fcs
        self.num_reg_convs, self.num_reg_fcs = num_reg_convs, num_reg_fcs
        self.conv_out_channels, self.fc_out_channels = conv_out_channels, fc_out_channels
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg

        self.shared_convs, self.shared_fcs, last_dim = self._add_conv_fc_branch(
            num_shared_convs, num_shared_fcs, self.in_channels, is_shared=True)
        self.shared_out_channels = last_dim
        self.cls_convs, self.cls_fcs, self.cls_last_dim = self._add_conv_fc_branch(
            num_cls_convs, num_cls_fcs, last_dim)
        self.reg_convs, self.reg_fcs, self.reg_last_dim = self._add_conv_fc_branch(
            num_reg_convs, num_reg_fcs, last_dim)
        if num_shared_fcs == 0 and not self.with_avg_pool:
            if num_cls_fcs == 0:
                self.cls_last_dim *= self.roi_feat_area
            if num_reg_fcs == 0:
                self.reg_last_dim *= self.roi_feat_area
        self.relu = nn.ReLU(inplace=True)
        if self.with_cls:
            self.fc_cls = self._build_predictor(self.cls_predictor_cfg, self.cls_last_dim, self.num_cls_logits)
        if self.with_reg:
            self.fc_reg = self._build_predictor(self.reg_predictor_cfg, self.reg_last_dim, self.num_reg_outputs)

    def _add_conv_fc_branch(self, num_convs: int, num_fcs: int, in_channels: int, is_shared: bool = False):
        """Build one branch; returns ``(convs, fcs, output dim)``."""
        last_dim = in_channels
        convs = nn.ModuleList()
        for i in range(num_convs):
            convs.append(ConvModule(last_dim if i == 0 else self.conv_out_channels, self.conv_out_channels, 3,
                                    padding=1, conv_cfg=self.conv_cfg, norm_cfg=self.norm_cfg))
        if num_convs > 0:
            last_dim = self.conv_out_channels
        fcs = nn.ModuleList()
        if num_fcs > 0:
            if (is_shared or self.num_shared_fcs == 0) and not self.with_avg_pool:
                last_dim *= self.roi_feat_area
            for i in range(num_fcs):
                fcs.append(nn.Linear(last_dim if i == 0 else self.fc_out_channels, self.fc_out_channels))
            last_dim = self.fc_out_channels
        return convs, fcs, last_dim

    def init_weights(self) -> None:
        """Predictors as :class:`BBoxHead`; branch fcs Xavier-uniform (convs keep ConvModule's Kaiming init)."""
        super().init_weights()
        for fcs in (self.shared_fcs, self.cls_fcs, self.reg_fcs):
            for fc in fcs:
                xavier_init(fc, distribution="uniform")

    def _branch(self, x: torch.Tensor, convs: nn.ModuleList, fcs: nn.ModuleList) -> torch.Tensor:
        for conv in convs:
            x = conv(x)
        if x.dim() > 2:
            x = self.avg_pool(x).flatten(1) if self.with_avg_pool else x.flatten(1)
        for fc in fcs:
            x = self.relu(fc(x))
        return x

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        for conv in self.shared_convs:
            x = conv(x)
        if self.num_shared_fcs > 0:
            x = self.avg_pool(x).flatten(1) if self.with_avg_pool else x.flatten(1)
            for fc in self.shared_fcs:
                x = self.relu(fc(x))
        cls_score = self.fc_cls(self._branch(x, self.cls_convs, self.cls_fcs)) if self.with_cls else None
        bbox_pred = self.fc_reg(self._branch(x, self.reg_convs, self.reg_fcs)) if self.with_reg else None
        return cls_score, bbox_pred


@HEADS.register_module()
class Shared2FCBBoxHead(ConvFCBBoxHead):
    """Two shared fcs (``shared_fcs.0``: ``C*k*k -> fc_out_channels``, ``shared_fcs.1``), then the predictors."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs):
        super().__init__(0, 2, 0, 0, 0, 0, *args, fc_out_channels=fc_out_channels, **kwargs)


@HEADS.register_module()
class Shared4Conv1FCBBoxHead(ConvFCBBoxHead):
    """Four shared 3x3 ConvModules and one shared fc, then the predictors."""

    def __init__(self, fc_out_channels: int = 1024, *args, **kwargs):
        super().__init__(4, 1, 0, 0, 0, 0, *args, fc_out_channels=fc_out_channels, **kwargs)
