"""Conv / norm / activation / upsample builders and ``ConvModule`` (mmcv 1.x ``mmcv.cnn`` semantics).

Registered names (mmcv 1.x):

* ``CONV_LAYERS``: ``Conv``, ``Conv1d``, ``Conv2d``, ``Conv3d``.
* ``NORM_LAYERS``: ``BN`` / ``BN2d`` (``nn.BatchNorm2d``), ``BN1d``, ``BN3d``, ``SyncBN`` (``nn.SyncBatchNorm``,
  which behaves as ``BatchNorm`` when ``torch.distributed`` is not initialised or in eval mode), ``GN``
  (``nn.GroupNorm``, ``num_groups`` required), ``LN`` (``nn.LayerNorm`` over the last dim), ``IN`` / ``IN2d``.
* ``ACTIVATION_LAYERS``: ``ReLU``, ``LeakyReLU``, ``PReLU``, ``RReLU``, ``ReLU6``, ``ELU``, ``Sigmoid``, ``Tanh``,
  ``GELU``, ``SiLU`` / ``Swish``, ``HSigmoid``, ``HSwish``.
* ``UPSAMPLE_LAYERS``: ``nearest``, ``bilinear`` (``nn.Upsample``), ``deconv`` (``nn.ConvTranspose2d``),
  ``pixel_shuffle``.

Module names inside a :class:`ConvModule` follow mmcv so that checkpoints load: ``conv``, then the norm under its
abbreviation (``bn`` for BN/SyncBN, ``gn``, ``ln``, ``in``) and ``activate`` (no parameters).

``LN`` on an NCHW feature map (ViTDet's ``ConvModule_Norm``): ``ConvModule`` applies the LayerNorm over the channel
dim (permute to NHWC, normalise, permute back). Outside ``ConvModule`` an ``LN`` module normalises the last dim,
as in mmcv, so transformer code that builds ``LN`` for ``(B, N, C)`` tokens keeps working.
"""
from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.nn import functional as F

from mmdet.registry import ACTIVATION_LAYERS, CONV_LAYERS, NORM_LAYERS, UPSAMPLE_LAYERS

__all__ = ["ConvModule", "build_conv_layer", "build_norm_layer", "build_activation_layer", "build_upsample_layer",
           "HSigmoid", "HSwish", "PixelShufflePack", "kaiming_init", "constant_init", "xavier_init",
           "normal_init", "init_children_weights"]

# ---------------------------------------------------------------- registration of torch layers
for _name, _cls in (("Conv", nn.Conv2d), ("Conv1d", nn.Conv1d), ("Conv2d", nn.Conv2d), ("Conv3d", nn.Conv3d)):
    CONV_LAYERS.register_module(name=_name, module=_cls)

for _name, _cls in (("BN", nn.BatchNorm2d), ("BN1d", nn.BatchNorm1d), ("BN2d", nn.BatchNorm2d),
                    ("BN3d", nn.BatchNorm3d), ("SyncBN", nn.SyncBatchNorm), ("GN", nn.GroupNorm),
                    ("LN", nn.LayerNorm), ("IN", nn.InstanceNorm2d), ("IN1d", nn.InstanceNorm1d),
                    ("IN2d", nn.InstanceNorm2d), ("IN3d", nn.InstanceNorm3d)):
    NORM_LAYERS.register_module(name=_name, module=_cls)

for _cls in (nn.ReLU, nn.LeakyReLU, nn.PReLU, nn.RReLU, nn.ReLU6, nn.ELU, nn.Sigmoid, nn.Tanh, nn.GELU, nn.SiLU):
    ACTIVATION_LAYERS.register_module(module=_cls)
ACTIVATION_LAYERS.register_module(name="Swish", module=nn.SiLU)


@ACTIVATION_LAYERS.register_module()
class HSigmoid(nn.Module):
    """mmcv ``HSigmoid``: ``clamp((x + bias) / divisor, min_value, max_value)`` (defaults give relu6(x+3)/6)."""

    def __init__(self, bias: float = 3.0, divisor: float = 6.0, min_value: float = 0.0, max_value: float = 1.0):
        super().__init__()
        if divisor == 0:
            raise ValueError("HSigmoid divisor must not be 0")
        self.bias, self.divisor, self.min_value, self.max_value = bias, divisor, min_value, max_value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return ((x + self.bias) / self.divisor).clamp(self.min_value, self.max_value)


@ACTIVATION_LAYERS.register_module()
class HSwish(nn.Module):
    """``x * relu6(x + 3) / 6``."""

    def __init__(self, inplace: bool = False):
        super().__init__()
        self.act = nn.ReLU6(inplace)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.act(x + 3) / 6


@UPSAMPLE_LAYERS.register_module(name="pixel_shuffle")
class PixelShufflePack(nn.Module):
    """Conv to ``out_channels * scale_factor**2`` channels then ``pixel_shuffle`` (mmcv key ``upsample_conv``)."""

    def __init__(self, in_channels: int, out_channels: int, scale_factor: int, upsample_kernel: int):
        super().__init__()
        self.scale_factor = scale_factor
        self.upsample_conv = nn.Conv2d(in_channels, out_channels * scale_factor * scale_factor, upsample_kernel,
                                       padding=(upsample_kernel - 1) // 2)
        xavier_init(self.upsample_conv, distribution="uniform")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.upsample_conv(x), self.scale_factor)


UPSAMPLE_LAYERS.register_module(name="nearest", module=nn.Upsample)
UPSAMPLE_LAYERS.register_module(name="bilinear", module=nn.Upsample)
UPSAMPLE_LAYERS.register_module(name="deconv", module=nn.ConvTranspose2d)


# ---------------------------------------------------------------- weight initialisers (mmcv.cnn.utils.weight_init)
def constant_init(module: nn.Module, val: float, bias: float = 0.0) -> None:
    if getattr(module, "weight", None) is not None:
        nn.init.constant_(module.weight, val)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


def xavier_init(module: nn.Module, gain: float = 1.0, bias: float = 0.0, distribution: str = "normal") -> None:
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"xavier_init distribution must be 'uniform' or 'normal', got {distribution!r}")
    if getattr(module, "weight", None) is not None:
        (nn.init.xavier_uniform_ if distribution == "uniform" else nn.init.xavier_normal_)(module.weight, gain=gain)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


def normal_init(module: nn.Module, mean: float = 0.0, std: float = 1.0, bias: float = 0.0) -> None:
    if getattr(module, "weight", None) is not None:
        nn.init.normal_(module.weight, mean, std)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


def kaiming_init(module: nn.Module, a: float = 0.0, mode: str = "fan_out", nonlinearity: str = "relu",
                 bias: float = 0.0, distribution: str = "normal") -> None:
    if distribution not in ("uniform", "normal"):
        raise ValueError(f"kaiming_init distribution must be 'uniform' or 'normal', got {distribution!r}")
    if getattr(module, "weight", None) is not None:
        init = nn.init.kaiming_uniform_ if distribution == "uniform" else nn.init.kaiming_normal_
        init(module.weight, a=a, mode=mode, nonlinearity=nonlinearity)
    if getattr(module, "bias", None) is not None:
        nn.init.constant_(module.bias, bias)


def init_children_weights(module: nn.Module) -> None:
    """Initialise ``module``'s sub-tree: every child that defines ``init_weights()`` initialises its own sub-tree,
    other children are searched recursively (mmcv ``BaseModule.init_weights`` order: parents before children)."""
    for child in module.children():
        if callable(getattr(child, "init_weights", None)):
            child.init_weights()
        else:
            init_children_weights(child)


# ---------------------------------------------------------------- builders
def _split_type(cfg: dict, what: str) -> tuple[str, dict]:
    if not isinstance(cfg, dict):
        raise TypeError(f"{what} config must be a dict like dict(type=...), got {type(cfg).__name__}: {cfg!r}")
    if "type" not in cfg:
        raise KeyError(f"{what} config {cfg!r} has no 'type' key")
    args = dict(cfg)
    return args.pop("type"), args


def _lookup(registry, layer_type, what: str):
    if not isinstance(layer_type, str):
        return layer_type
    layer_cls = registry.get(layer_type)
    if layer_cls is None:
        hint = registry.closest(layer_type)
        hint_text = f"; did you mean {', '.join(repr(h) for h in hint)}?" if hint else ""
        raise KeyError(f"unknown {what} type '{layer_type}'{hint_text} (registered: {', '.join(registry.keys())})")
    return layer_cls


def build_conv_layer(cfg: dict | None, *args, **kwargs) -> nn.Module:
    """Build a conv layer; ``cfg=None`` means ``Conv2d``. ``args``/``kwargs`` go to the layer's constructor."""
    layer_type, cfg_args = _split_type(cfg if cfg is not None else dict(type="Conv2d"), "conv_cfg")
    return _lookup(CONV_LAYERS, layer_type, "conv layer")(*args, **kwargs, **cfg_args)


def _norm_abbreviation(layer_type: str, layer_cls: type) -> str:
    """mmcv's ``infer_abbr``: the attribute name the norm module gets inside its parent."""
    if hasattr(layer_cls, "_abbr_"):
        return layer_cls._abbr_
    if issubclass(layer_cls, nn.modules.instancenorm._InstanceNorm):
        return "in"
    if issubclass(layer_cls, nn.modules.batchnorm._BatchNorm):
        return "bn"
    if issubclass(layer_cls, nn.GroupNorm):
        return "gn"
    if issubclass(layer_cls, nn.LayerNorm):
        return "ln"
    lowered = layer_type.lower()
    for needle, abbr in (("batch", "bn"), ("group", "gn"), ("layer", "ln"), ("instance", "in")):
        if needle in lowered:
            return abbr
    return "norm_layer"


def build_norm_layer(cfg: dict, num_features: int, postfix: int | str = "") -> tuple[str, nn.Module]:
    """Build a normalisation layer (mmcv semantics).

    Args:
        cfg: ``dict(type='BN'|'SyncBN'|'GN'|'LN'|'IN', requires_grad=True, eps=1e-5, ...)``. ``GN`` needs
            ``num_groups``. ``requires_grad=False`` freezes the affine parameters.
        num_features: number of channels ``C``.
        postfix: appended to the abbreviation to form the name (``'bn' + '1'`` -> ``'bn1'``).

    Returns:
        ``(name, module)``, e.g. ``('bn1', BatchNorm2d(C))``.
    """
    layer_type, args = _split_type(cfg, "norm_cfg")
    layer_cls = _lookup(NORM_LAYERS, layer_type, "norm layer")
    name = _norm_abbreviation(str(layer_type), layer_cls) + str(postfix)
    requires_grad = args.pop("requires_grad", True)
    args.setdefault("eps", 1e-5)
    if issubclass(layer_cls, nn.GroupNorm):
        if "num_groups" not in args:
            raise KeyError(f"norm_cfg {cfg!r}: GN needs 'num_groups', e.g. dict(type='GN', num_groups=32)")
        layer = layer_cls(num_channels=num_features, **args)
    else:
        layer = layer_cls(num_features, **args)
    for param in layer.parameters():
        param.requires_grad = requires_grad
    return name, layer


def build_activation_layer(cfg: dict) -> nn.Module:
    """Build an activation from ``dict(type='ReLU', inplace=True, ...)``."""
    layer_type, args = _split_type(cfg, "act_cfg")
    return _lookup(ACTIVATION_LAYERS, layer_type, "activation")(**args)


def build_upsample_layer(cfg: dict, *args, **kwargs) -> nn.Module:
    """Build an upsampling layer; for ``nearest`` / ``bilinear`` the type becomes ``nn.Upsample``'s ``mode``."""
    layer_type, cfg_args = _split_type(cfg, "upsample_cfg")
    layer_cls = _lookup(UPSAMPLE_LAYERS, layer_type, "upsample layer")
    if layer_cls is nn.Upsample:
        cfg_args["mode"] = layer_type
    return layer_cls(*args, **kwargs, **cfg_args)


# ---------------------------------------------------------------- ConvModule
_NO_INPLACE_ACTIVATIONS = ("Tanh", "PReLU", "Sigmoid", "HSigmoid", "Swish", "GELU", "SiLU")


class ConvModule(nn.Module):
    """Conv -> norm -> activation block with mmcv 1.x ``ConvModule`` arguments and key names.

    Args:
        in_channels, out_channels, kernel_size, stride, padding, dilation, groups: as ``nn.Conv2d``.
        bias: ``'auto'`` -> a conv bias only when there is no norm layer.
        conv_cfg: ``None`` (Conv2d) or ``dict(type=...)`` from ``CONV_LAYERS``.
        norm_cfg: ``None`` or ``dict(type='BN'|'SyncBN'|'GN'|'LN', ...)``; ``LN`` normalises over channels.
        act_cfg: ``None`` (no activation) or ``dict(type='ReLU', ...)``.
        inplace: in-place activation when the activation supports it.
        with_spectral_norm: wrap the conv in ``nn.utils.spectral_norm``.
        padding_mode: ``'zeros'`` (padding inside the conv) or ``'reflect'`` / ``'replicate'`` (explicit pad).
        order: permutation of ``('conv', 'norm', 'act')``.

    Input ``(N, C_in, H, W)`` -> output ``(N, C_out, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0, dilation=1,
                 groups: int = 1, bias="auto", conv_cfg: dict | None = None, norm_cfg: dict | None = None,
                 act_cfg: dict | None = dict(type="ReLU"), inplace: bool = True, with_spectral_norm: bool = False,
                 padding_mode: str = "zeros", order: tuple = ("conv", "norm", "act")):
        super().__init__()
        if conv_cfg is not None and not isinstance(conv_cfg, dict):
            raise TypeError(f"ConvModule conv_cfg must be None or a dict, got {conv_cfg!r}")
        if norm_cfg is not None and not isinstance(norm_cfg, dict):
            raise TypeError(f"ConvModule norm_cfg must be None or a dict, got {norm_cfg!r}")
        if act_cfg is not None and not isinstance(act_cfg, dict):
            raise TypeError(f"ConvModule act_cfg must be None or a dict, got {act_cfg!r}")
        if not (isinstance(order, tuple) and len(order) == 3 and set(order) == {"conv", "norm", "act"}):
            raise ValueError(f"ConvModule order must be a permutation of ('conv', 'norm', 'act'), got {order!r}")
        if padding_mode not in ("zeros", "reflect", "replicate", "circular"):
            raise ValueError(f"ConvModule padding_mode must be zeros/reflect/replicate/circular, got {padding_mode!r}")
        self.conv_cfg, self.norm_cfg, self.act_cfg = conv_cfg, norm_cfg, act_cfg
        self.inplace = inplace
        self.with_spectral_norm = with_spectral_norm
        self.order = order
        self.with_norm = norm_cfg is not None
        self.with_activation = act_cfg is not None
        self.with_explicit_padding = padding_mode != "zeros"
        if bias == "auto":
            bias = not self.with_norm
        self.with_bias = bias
        if self.with_explicit_padding:
            self.padding_layer_mode, self.explicit_padding = padding_mode, padding
        conv_padding = 0 if self.with_explicit_padding else padding
        self.conv = build_conv_layer(conv_cfg, in_channels, out_channels, kernel_size, stride=stride,
                                     padding=conv_padding, dilation=dilation, groups=groups, bias=bias)
        self.in_channels, self.out_channels = self.conv.in_channels, self.conv.out_channels
        self.kernel_size, self.stride = self.conv.kernel_size, self.conv.stride
        self.padding, self.dilation = padding, self.conv.dilation
        self.transposed, self.output_padding = self.conv.transposed, self.conv.output_padding
        self.groups = self.conv.groups
        if with_spectral_norm:
            self.conv = nn.utils.spectral_norm(self.conv)

        self.norm_name = None
        self.norm_over_channels_last = False
        if self.with_norm:
            norm_channels = out_channels if order.index("norm") > order.index("conv") else in_channels
            self.norm_name, norm = build_norm_layer(norm_cfg, norm_channels)
            self.add_module(self.norm_name, norm)
            self.norm_over_channels_last = isinstance(norm, nn.LayerNorm)
            if self.with_bias and isinstance(norm, (nn.modules.batchnorm._BatchNorm,
                                                    nn.modules.instancenorm._InstanceNorm)):
                warnings.warn("ConvModule: a conv bias followed by BN/IN is redundant (bias='auto' avoids it)")
        if self.with_activation:
            act_args = dict(act_cfg)
            if act_args["type"] not in _NO_INPLACE_ACTIVATIONS:
                act_args.setdefault("inplace", inplace)
            self.activate = build_activation_layer(act_args)
        self.init_weights()

    @property
    def norm(self) -> nn.Module | None:
        return getattr(self, self.norm_name) if self.norm_name else None

    def init_weights(self) -> None:
        """mmcv's default: Kaiming-normal (fan_out) for the conv, constant 1/0 for the norm."""
        if not hasattr(self.conv, "init_weights"):
            if self.with_activation and self.act_cfg["type"] == "LeakyReLU":
                nonlinearity, a = "leaky_relu", self.act_cfg.get("negative_slope", 0.01)
            else:
                nonlinearity, a = "relu", 0.0
            kaiming_init(self.conv, a=a, nonlinearity=nonlinearity)
        if self.with_norm:
            constant_init(self.norm, 1, bias=0)

    def _apply_norm(self, x: torch.Tensor) -> torch.Tensor:
        if self.norm_over_channels_last:  # LayerNorm over C of an (N, C, H, W) map
            return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        return self.norm(x)

    def forward(self, x: torch.Tensor, activate: bool = True, norm: bool = True) -> torch.Tensor:
        for layer in self.order:
            if layer == "conv":
                if self.with_explicit_padding:
                    pad = self.explicit_padding
                    pad = (pad,) * 4 if isinstance(pad, int) else (pad[1], pad[1], pad[0], pad[0])
                    x = F.pad(x, pad, mode=self.padding_layer_mode)
                x = self.conv(x)
            elif layer == "norm" and norm and self.with_norm:
                x = self._apply_norm(x)
            elif layer == "act" and activate and self.with_activation:
                x = self.activate(x)
        return x

