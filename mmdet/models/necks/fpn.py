"""Feature Pyramid Network (mmdetection 2.x ``FPN``, plus the ViTDet fork's ``use_residual``)."""
from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from mmdet.models.layers.conv_module import ConvModule, xavier_init
from mmdet.registry import NECKS

__all__ = ["FPN"]

_EXTRA_CONV_SOURCES = ("on_input", "on_lateral", "on_output")


@NECKS.register_module()
class FPN(nn.Module):
    """FPN neck.

    Args:
        in_channels: channels of each backbone output.
        out_channels: channels of every output level.
        num_outs: number of output levels; levels beyond the used inputs come from extra convs or max-pooling.
        start_level / end_level: range of backbone levels used (``end_level=-1``: up to the last).
        add_extra_convs: ``False`` (extra levels by ``max_pool2d(kernel 1, stride 2)``), ``True`` (= ``'on_input'``),
            or ``'on_input'`` / ``'on_lateral'`` / ``'on_output'``: the source of the first stride-2 3x3 extra conv.
        relu_before_extra_convs: ReLU before every extra conv after the first.
        no_norm_on_lateral: lateral 1x1 convs without norm.
        conv_cfg / norm_cfg / act_cfg: ``ConvModule`` configs (``norm_cfg=dict(type='LN')`` normalises channels).
        upsample_cfg: ``F.interpolate`` kwargs for the top-down path; with ``scale_factor`` it upsamples by that
            factor, otherwise to the exact size of the finer level.
        use_residual: ViTDet fork; ``False`` skips the top-down upsample-and-add.

    Forward: tuple of ``(N, in_channels[i], H_i, W_i)`` -> tuple of ``num_outs`` maps ``(N, out_channels, ., .)``.
    """

    def __init__(self, in_channels: list[int], out_channels: int, num_outs: int, start_level: int = 0,
                 end_level: int = -1, add_extra_convs: bool | str = False, relu_before_extra_convs: bool = False,
                 no_norm_on_lateral: bool = False, conv_cfg: dict | None = None, norm_cfg: dict | None = None,
                 act_cfg: dict | None = None, upsample_cfg: dict = dict(mode="nearest"), use_residual: bool = True,
                 init_cfg: dict | None = None):
        super().__init__()
        if not isinstance(in_channels, (list, tuple)):
            raise TypeError(f"FPN in_channels must be a list of ints, got {in_channels!r}")
        self.in_channels = list(in_channels)
        self.out_channels = out_channels
        self.num_ins = len(in_channels)
        self.num_outs = num_outs
        self.relu_before_extra_convs = relu_before_extra_convs
        self.no_norm_on_lateral = no_norm_on_lateral
        self.upsample_cfg = dict(upsample_cfg)
        self.use_residual = use_residual
        self.init_cfg = init_cfg
        if end_level == -1 or end_level == self.num_ins - 1:
            self.backbone_end_level = self.num_ins
            if num_outs < self.num_ins - start_level:
                raise ValueError(f"FPN num_outs={num_outs} is smaller than the {self.num_ins - start_level} "
                                 f"used input levels")
        else:
            self.backbone_end_level = end_level + 1
            if not (end_level < self.num_ins and num_outs == end_level - start_level + 1):
                raise ValueError(f"FPN end_level={end_level} needs end_level < {self.num_ins} and "
                                 f"num_outs == end_level - start_level + 1")
        self.start_level, self.end_level = start_level, end_level
        if add_extra_convs is True:
            add_extra_convs = "on_input"
        if add_extra_convs not in (False, *_EXTRA_CONV_SOURCES):
            raise ValueError(f"FPN add_extra_convs must be a bool or one of {_EXTRA_CONV_SOURCES}, "
                             f"got {add_extra_convs!r}")
        self.add_extra_convs = add_extra_convs

        self.lateral_convs = nn.ModuleList()
        self.fpn_convs = nn.ModuleList()
        for i in range(start_level, self.backbone_end_level):
            self.lateral_convs.append(ConvModule(
                in_channels[i], out_channels, 1, conv_cfg=conv_cfg,
                norm_cfg=norm_cfg if not no_norm_on_lateral else None, act_cfg=act_cfg, inplace=False))
            self.fpn_convs.append(ConvModule(out_channels, out_channels, 3, padding=1, conv_cfg=conv_cfg,
                                             norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))
        num_extra = num_outs - self.backbone_end_level + start_level
        if add_extra_convs and num_extra >= 1:
            for i in range(num_extra):
                if i == 0 and add_extra_convs == "on_input":
                    extra_in = in_channels[self.backbone_end_level - 1]
                else:
                    extra_in = out_channels
                self.fpn_convs.append(ConvModule(extra_in, out_channels, 3, stride=2, padding=1, conv_cfg=conv_cfg,
                                                 norm_cfg=norm_cfg, act_cfg=act_cfg, inplace=False))

    def init_weights(self) -> None:
        """mmdet default: Xavier-uniform on every Conv2d."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                xavier_init(m, distribution="uniform")

    def forward(self, inputs: tuple[torch.Tensor, ...]) -> tuple[torch.Tensor, ...]:
        if len(inputs) != len(self.in_channels):
            raise ValueError(f"FPN got {len(inputs)} inputs but in_channels has {len(self.in_channels)} entries")
        laterals = [conv(inputs[i + self.start_level]) for i, conv in enumerate(self.lateral_convs)]
        if self.use_residual:
            for i in range(len(laterals) - 1, 0, -1):
                if "scale_factor" in self.upsample_cfg:
                    upsampled = F.interpolate(laterals[i], **self.upsample_cfg)
                else:
                    upsampled = F.interpolate(laterals[i], size=laterals[i - 1].shape[2:], **self.upsample_cfg)
                laterals[i - 1] = laterals[i - 1] + upsampled
        outs = [self.fpn_convs[i](lateral) for i, lateral in enumerate(laterals)]
        used = len(laterals)
        if self.num_outs > used:
            if not self.add_extra_convs:
                for _ in range(self.num_outs - used):
                    outs.append(F.max_pool2d(outs[-1], 1, stride=2))
            else:
                if self.add_extra_convs == "on_input":
                    source = inputs[self.backbone_end_level - 1]
                elif self.add_extra_convs == "on_lateral":
                    source = laterals[-1]
                else:
                    source = outs[-1]
                outs.append(self.fpn_convs[used](source))
                for i in range(used + 1, self.num_outs):
                    prev = F.relu(outs[-1]) if self.relu_before_extra_convs else outs[-1]
                    outs.append(self.fpn_convs[i](prev))
        return tuple(outs)
