"""ResNet backbone (mmdetection 2.x ``ResNet``, ``style='pytorch'`` / ``'caffe'``).

Key names equal torchvision's ResNet (``conv1``, ``bn1``, ``layer{1..4}.{b}.conv{1,2,3}`` / ``bn{1,2,3}``,
``layer{s}.0.downsample.{0,1}``), so torchvision ImageNet checkpoints load directly (their ``fc.*`` is unused).
"""
from __future__ import annotations

import os

import torch
import torch.utils.checkpoint as cp
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from mmdet.models.layers.conv_module import build_conv_layer, build_norm_layer, constant_init, kaiming_init
from mmdet.models.layers.transformer import FrozenStagesMixin
from mmdet.registry import BACKBONES
from mmdet.utils.logger import get_root_logger

__all__ = ["ResNet", "BasicBlock", "Bottleneck", "ResLayer", "resolve_checkpoint_path"]

_TORCHVISION_WEIGHTS = {
    "resnet18": "ResNet18_Weights", "resnet34": "ResNet34_Weights", "resnet50": "ResNet50_Weights",
    "resnet101": "ResNet101_Weights", "resnet152": "ResNet152_Weights",
}


def resolve_checkpoint_path(checkpoint: str) -> str:
    """Turn ``torchvision://resnet50`` into a local file (torch-hub cache, downloaded if missing); paths pass through."""
    if not checkpoint.startswith("torchvision://"):
        return checkpoint
    name = checkpoint[len("torchvision://"):]
    if name not in _TORCHVISION_WEIGHTS:
        raise KeyError(f"unknown torchvision checkpoint '{checkpoint}'; known: "
                       f"{', '.join('torchvision://' + k for k in _TORCHVISION_WEIGHTS)}")
    import torchvision.models as tvm
    url = getattr(tvm, _TORCHVISION_WEIGHTS[name]).IMAGENET1K_V1.url
    cached = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))
    if not os.path.isfile(cached):
        os.makedirs(os.path.dirname(cached), exist_ok=True)
        try:
            torch.hub.download_url_to_file(url, cached)
        except Exception as e:  # noqa: BLE001 - re-raised with the fix
            raise FileNotFoundError(f"'{checkpoint}' is not cached at {cached} and could not be downloaded ({e}); "
                                    f"download {url} to that path or set the backbone's pretrained to a local file"
                                    ) from e
    return cached


class _ResidualBlock(nn.Module):
    """What :class:`BasicBlock` and :class:`Bottleneck` share: ``conv{i}`` / ``bn{i}`` registration (key order
    conv1, bn1, conv2, bn2, ...), the shortcut, and ``relu(branch(x) + shortcut(x))`` (through
    ``torch.utils.checkpoint`` with ``with_cp`` while the input needs grad). Subclasses build their convs with
    :meth:`_add_conv_norm`, then call :meth:`_add_shortcut`, and define :meth:`_branch`."""

    def _add_conv_norm(self, index: int, conv: nn.Module, norm_cfg: dict, channels: int) -> None:
        """Register ``conv{index}`` and its norm (``bn{index}`` / ``gn{index}`` ... after ``norm_cfg``)."""
        setattr(self, f"conv{index}", conv)
        name, norm = build_norm_layer(norm_cfg, channels, postfix=index)
        setattr(self, f"norm{index}_name", name)
        self.add_module(name, norm)
        self._last_norm_name = name

    def _add_shortcut(self, downsample: nn.Module | None, with_cp: bool) -> None:
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.with_cp = with_cp

    @property
    def last_norm(self) -> nn.Module:
        """The norm closing the residual branch (zero-initialised with ``zero_init_residual``)."""
        return getattr(self, self._last_norm_name)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError(f"{type(self).__name__} must define _branch()")

    def _residual(self, x: torch.Tensor) -> torch.Tensor:
        out = self._branch(x)
        identity = x if self.downsample is None else self.downsample(x)
        return out + identity

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_cp and x.requires_grad:
            out = cp.checkpoint(self._residual, x, use_reentrant=False)
        else:
            out = self._residual(x)
        return self.relu(out)


class BasicBlock(_ResidualBlock):
    """Two 3x3 convs with identity shortcut (ResNet-18/34). ``(N, inplanes, H, W) -> (N, planes, H/s, W/s)``."""

    expansion = 1

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, style: str = "pytorch", with_cp: bool = False,
                 conv_cfg: dict | None = None, norm_cfg: dict = dict(type="BN")):
        super().__init__()
        self._add_conv_norm(1, build_conv_layer(conv_cfg, inplanes, planes, 3, stride=stride, padding=dilation,
                                                dilation=dilation, bias=False), norm_cfg, planes)
        self._add_conv_norm(2, build_conv_layer(conv_cfg, planes, planes, 3, padding=1, bias=False), norm_cfg, planes)
        self._add_shortcut(downsample, with_cp)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(getattr(self, self.norm1_name)(self.conv1(x)))
        return getattr(self, self.norm2_name)(self.conv2(out))


class Bottleneck(_ResidualBlock):
    """1x1 -> 3x3 -> 1x1 bottleneck (ResNet-50/101/152); the stride sits on the 3x3 conv for ``style='pytorch'``
    and on the first 1x1 for ``'caffe'``. ``(N, inplanes, H, W) -> (N, 4*planes, H/s, W/s)``."""

    expansion = 4

    def __init__(self, inplanes: int, planes: int, stride: int = 1, dilation: int = 1,
                 downsample: nn.Module | None = None, style: str = "pytorch", with_cp: bool = False,
                 conv_cfg: dict | None = None, norm_cfg: dict = dict(type="BN")):
        super().__init__()
        if style not in ("pytorch", "caffe"):
            raise ValueError(f"ResNet style must be 'pytorch' or 'caffe', got {style!r}")
        conv1_stride, conv2_stride = (1, stride) if style == "pytorch" else (stride, 1)
        self._add_conv_norm(1, build_conv_layer(conv_cfg, inplanes, planes, 1, stride=conv1_stride, bias=False),
                            norm_cfg, planes)
        self._add_conv_norm(2, build_conv_layer(conv_cfg, planes, planes, 3, stride=conv2_stride, padding=dilation,
                                                dilation=dilation, bias=False), norm_cfg, planes)
        self._add_conv_norm(3, build_conv_layer(conv_cfg, planes, planes * self.expansion, 1, bias=False),
                            norm_cfg, planes * self.expansion)
        self._add_shortcut(downsample, with_cp)

    def _branch(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(getattr(self, self.norm1_name)(self.conv1(x)))
        out = self.relu(getattr(self, self.norm2_name)(self.conv2(out)))
        return getattr(self, self.norm3_name)(self.conv3(out))


class ResLayer(nn.Sequential):
    """One ResNet stage: ``num_blocks`` blocks, the first with stride and a ``downsample`` (1x1 conv + norm)
    shortcut when the shape changes."""

    def __init__(self, block: type, inplanes: int, planes: int, num_blocks: int, stride: int = 1,
                 dilation: int = 1, style: str = "pytorch", with_cp: bool = False, conv_cfg: dict | None = None,
                 norm_cfg: dict = dict(type="BN")):
        downsample = None
        if stride != 1 or inplanes != planes * block.expansion:
            downsample = nn.Sequential(
                build_conv_layer(conv_cfg, inplanes, planes * block.expansion, 1, stride=stride, bias=False),
                build_norm_layer(norm_cfg, planes * block.expansion)[1])
        common = dict(dilation=dilation, style=style, with_cp=with_cp, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
        blocks = [block(inplanes, planes, stride=stride, downsample=downsample, **common)]
        blocks += [block(planes * block.expansion, planes, stride=1, **common) for _ in range(1, num_blocks)]
        super().__init__(*blocks)


@BACKBONES.register_module()
class ResNet(FrozenStagesMixin, nn.Module):
    """ResNet with mmdetection 2.x arguments.

    Args:
        depth: 18, 34, 50, 101 or 152.
        in_channels: input image channels.
        stem_channels / base_channels: stem width (default ``base_channels``) and stage-1 width (64).
        num_stages: 1..4 stages used.
        strides / dilations: per stage.
        out_indices: stages whose outputs are returned (0-based).
        style: ``'pytorch'`` (stride on the 3x3 conv) or ``'caffe'`` (stride on the first 1x1).
        frozen_stages: stem (0 means only the stem) and stages ``1..frozen_stages`` are put in eval mode and
            get ``requires_grad=False``; -1 freezes nothing.
        conv_cfg / norm_cfg: layer configs; ``norm_cfg['requires_grad']`` controls the norm affine params.
        norm_eval: keep every BatchNorm in eval mode (running stats frozen) during training.
        with_cp: gradient checkpointing per block.
        zero_init_residual: zero the last norm's weight of each block in :meth:`init_weights`.
        pretrained / init_cfg: a checkpoint path or ``dict(type='Pretrained', checkpoint=...)``, loaded by
            :meth:`init_weights` (``torchvision://resnet50`` style names resolve to the torch-hub cache).

    Forward: ``(N, 3, H, W)`` -> tuple of ``(N, C_i, H / 2^(i+2), W / 2^(i+2))`` for ``i in out_indices``
    (C = 256, 512, 1024, 2048 for depth >= 50).
    """

    arch_settings = {18: (BasicBlock, (2, 2, 2, 2)), 34: (BasicBlock, (3, 4, 6, 3)), 50: (Bottleneck, (3, 4, 6, 3)),
                     101: (Bottleneck, (3, 4, 23, 3)), 152: (Bottleneck, (3, 8, 36, 3))}

    def __init__(self, depth: int, in_channels: int = 3, stem_channels: int | None = None, base_channels: int = 64,
                 num_stages: int = 4, strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1), out_indices=(0, 1, 2, 3),
                 style: str = "pytorch", deep_stem: bool = False, avg_down: bool = False, frozen_stages: int = -1,
                 conv_cfg: dict | None = None, norm_cfg: dict = dict(type="BN", requires_grad=True),
                 norm_eval: bool = True, dcn=None, stage_with_dcn=(False, False, False, False), plugins=None,
                 with_cp: bool = False, zero_init_residual: bool = True, pretrained: str | None = None,
                 init_cfg: dict | list | None = None):
        super().__init__()
        if depth not in self.arch_settings:
            raise KeyError(f"ResNet depth must be one of {sorted(self.arch_settings)}, got {depth}")
        if deep_stem or avg_down:
            raise ValueError("ResNet: deep_stem / avg_down (ResNetV1d) are not supported; use deep_stem=False, "
                             "avg_down=False")
        if dcn is not None or plugins is not None:
            raise ValueError("ResNet: dcn and plugins need compiled ops that this toolbox does not ship; "
                             "set dcn=None, plugins=None")
        if not 1 <= num_stages <= 4:
            raise ValueError(f"ResNet num_stages must be in 1..4, got {num_stages}")
        if len(strides) < num_stages or len(dilations) < num_stages:
            raise ValueError(f"ResNet strides {strides} / dilations {dilations} need {num_stages} entries")
        if max(out_indices) >= num_stages:
            raise ValueError(f"ResNet out_indices {out_indices} must be < num_stages={num_stages}")
        if pretrained is not None and init_cfg is not None:
            raise ValueError("ResNet: give either pretrained or init_cfg, not both")
        self.depth = depth
        self.stem_channels = stem_channels if stem_channels is not None else base_channels
        self.base_channels = base_channels
        self.num_stages = num_stages
        self.strides, self.dilations = strides, dilations
        self.out_indices = tuple(out_indices)
        self.style = style
        self.frozen_stages = frozen_stages
        self.conv_cfg, self.norm_cfg = conv_cfg, norm_cfg
        self.norm_eval = norm_eval
        self.with_cp = with_cp
        self.zero_init_residual = zero_init_residual
        self.pretrained = pretrained
        self.init_cfg = init_cfg
        self.block, stage_blocks = self.arch_settings[depth]
        self.stage_blocks = stage_blocks[:num_stages]

        self.conv1 = build_conv_layer(conv_cfg, in_channels, self.stem_channels, 7, stride=2, padding=3, bias=False)
        self.norm1_name, norm1 = build_norm_layer(norm_cfg, self.stem_channels, postfix=1)
        self.add_module(self.norm1_name, norm1)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)

        self.res_layers = []
        inplanes = self.stem_channels
        for i, num_blocks in enumerate(self.stage_blocks):
            planes = base_channels * 2 ** i
            layer = ResLayer(self.block, inplanes, planes, num_blocks, stride=strides[i], dilation=dilations[i],
                             style=style, with_cp=with_cp, conv_cfg=conv_cfg, norm_cfg=norm_cfg)
            inplanes = planes * self.block.expansion
            name = f"layer{i + 1}"
            self.add_module(name, layer)
            self.res_layers.append(name)
        self.feat_dim = inplanes
        self._freeze_stages()

    @property
    def norm1(self) -> nn.Module:
        return getattr(self, self.norm1_name)

    def frozen_modules(self) -> list[nn.Module]:
        stem = [self.conv1, self.norm1] if self.frozen_stages >= 0 else []
        return stem + [getattr(self, f"layer{i}") for i in range(1, self.frozen_stages + 1)]

    def _checkpoint_to_load(self) -> str | None:
        if self.pretrained is not None:
            return self.pretrained
        init_cfgs = self.init_cfg if isinstance(self.init_cfg, list) else [self.init_cfg]
        for cfg in init_cfgs:
            if isinstance(cfg, dict) and cfg.get("type") == "Pretrained":
                if "checkpoint" not in cfg:
                    raise KeyError(f"ResNet init_cfg {cfg!r} has no 'checkpoint' key")
                return cfg["checkpoint"]
        return None

    def init_weights(self, pretrained: str | None = None) -> None:
        """Load ``pretrained`` (argument, else ``self.pretrained`` / ``init_cfg``) or apply the default init
        (Kaiming fan_out convs, norm 1/0, zero-init of each block's last norm)."""
        checkpoint = pretrained if pretrained is not None else self._checkpoint_to_load()
        if checkpoint is not None:
            from mmdet.engine.checkpoint import load_checkpoint
            load_checkpoint(self, resolve_checkpoint_path(checkpoint), map_location="cpu", strict=False,
                            logger=get_root_logger())
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                kaiming_init(m)
            elif isinstance(m, (_BatchNorm, nn.GroupNorm)):
                constant_init(m, 1)
        if self.zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    constant_init(m.last_norm, 0)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = self.maxpool(self.relu(self.norm1(self.conv1(x))))
        outs = []
        for i, name in enumerate(self.res_layers):
            x = getattr(self, name)(x)
            if i in self.out_indices:
                outs.append(x)
        return tuple(outs)

    def train(self, mode: bool = True) -> "ResNet":
        """Train mode that keeps frozen stages and (with ``norm_eval``) every BatchNorm in eval mode."""
        super().train(mode)  # FrozenStagesMixin: re-freezes the frozen stages
        if mode and self.norm_eval:
            for m in self.modules():
                if isinstance(m, _BatchNorm):
                    m.eval()
        return self
