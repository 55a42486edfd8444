"""Small building blocks shared by the transformer backbones.

Window helpers work on channels-last maps ``(B, H, W, C)`` unless they say otherwise; padding is always
right/bottom with zeros, as every official backbone here does. The shifted-window machinery (shift masks, their
cache, the relative-position-biased window attention and the pad/roll wrapper around it) serves both Swin
(channels-last) and Swin-Visformer (NCHW).
"""
from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Callable, Mapping, NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


def drop_path(x: torch.Tensor, drop_prob: float = 0.0, training: bool = False) -> torch.Tensor:
    """Stochastic depth per sample: zero whole samples with prob ``drop_prob``, rescale the rest by 1/keep."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask.div_(keep)


class DropPath(nn.Module):
    """Module form of :func:`drop_path` (identity in eval mode or at rate 0)."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = float(drop_prob)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self) -> str:
        return f"drop_prob={self.drop_prob}"


class Mlp(nn.Module):
    """``fc1 -> act -> drop -> fc2 -> drop`` on the last dimension (key names ``fc1``/``fc2`` as timm)."""

    def __init__(self, in_features: int, hidden_features: int | None = None, out_features: int | None = None,
                 act_layer=nn.GELU, drop: float = 0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features)
        self.act = act_layer()
        self.fc2 = nn.Linear(hidden_features, out_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(self.act(self.fc1(x)))))


def init_linear_and_norm(m: nn.Module) -> None:
    """Constructor init of one module (for ``model.apply``): Linear trunc-normal(0.02) weight and zero bias;
    LayerNorm / BatchNorm unit weight and zero bias; other modules untouched."""
    if isinstance(m, nn.Linear):
        nn.init.trunc_normal_(m.weight, std=0.02)
        if m.bias is not None:
            nn.init.zeros_(m.bias)
    elif isinstance(m, (nn.LayerNorm, nn.modules.batchnorm._BatchNorm)):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)


class FrozenStagesMixin:
    """``train(mode)`` that keeps frozen stages frozen, for ``nn.Module`` backbones.

    Subclasses define :meth:`frozen_modules`; :meth:`_freeze_stages` puts those in eval mode with
    ``requires_grad=False`` (call it at the end of ``__init__``), and ``train()`` re-applies it.
    """

    def frozen_modules(self) -> list[nn.Module]:
        raise NotImplementedError(f"{type(self).__name__} must define frozen_modules()")

    def _freeze_stages(self) -> None:
        for module in self.frozen_modules():
            module.eval()
            for p in module.parameters():
                p.requires_grad = False

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze_stages()
        return self


class TransformerBackbone(FrozenStagesMixin, nn.Module):
    """Base of the transformer backbones (Swin, Swin-Visformer, ViTAEv2 / VSA, ViTDet): frozen-stage ``train``
    (:class:`FrozenStagesMixin`) and ``init_weights``.

    Random initialisation happens in the subclass constructor; ``init_weights(path)`` loads an official
    classification or detection checkpoint through :func:`mmdet.engine.checkpoint.load_checkpoint`, which applies
    the conversion registered for the class.
    """

    def init_weights(self, pretrained: str | None = None) -> None:
        """Load ``pretrained`` (else the constructor's ``pretrained`` where the class takes one); None keeps the
        constructor's random init."""
        pretrained = pretrained if pretrained is not None else getattr(self, "pretrained", None)
        if pretrained is None:
            return
        if not isinstance(pretrained, str):
            raise TypeError(f"{type(self).__name__}.init_weights: pretrained must be a checkpoint path (str) or None, "
                            f"got {type(pretrained).__name__}")
        from mmdet.engine.checkpoint import load_checkpoint
        from mmdet.utils.logger import get_root_logger
        load_checkpoint(self, pretrained, map_location="cpu", strict=False, logger=get_root_logger())


#: take the explicit ``softmax(scale * q k^T + bias) v`` path in :func:`attention_with_bias` for CPU training with
#: a bias that requires grad (benchmarks.profile_train_step --ab-attention sets it False to time the SDPA path)
EXPLICIT_BIAS_ATTENTION_ON_CPU = True


class DecomposedBias(NamedTuple):
    """An additive logits term ``B[i, (ky, kx)] = row[i, ky] + col[i, kx]`` kept in its two factors.

    ``row``: ``(..., N, kh)``, ``col``: ``(..., N, kw)`` for keys on a ``kh x kw`` grid (row-major, ``kh * kw``
    keys). ViTDet's decomposed relative position is this form; keeping it factored lets the explicit attention
    path add it to the logits by broadcasting instead of materialising another ``N x M`` tensor.
    """

    row: torch.Tensor
    col: torch.Tensor

    @property
    def requires_grad(self) -> bool:
        return self.row.requires_grad or self.col.requires_grad

    def to(self, dtype: torch.dtype) -> "DecomposedBias":
        return DecomposedBias(self.row.to(dtype), self.col.to(dtype))

    def dense(self) -> torch.Tensor:
        """The full ``(..., N, kh * kw)`` term."""
        full = self.row.unsqueeze(-1) + self.col.unsqueeze(-2)
        return full.flatten(-2)

    def add_to(self, logits: torch.Tensor) -> torch.Tensor:
        """``logits + B`` for fresh ``(..., N, kh * kw)`` logits, with one new tensor (the sum) and an in-place add."""
        kh, kw = self.row.shape[-1], self.col.shape[-1]
        grid = logits.unflatten(-1, (kh, kw))
        return (grid + self.row.unsqueeze(-1)).add_(self.col.unsqueeze(-2)).flatten(-2)


def attention_with_bias(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, bias: torch.Tensor | DecomposedBias,
                        scale: float | None = None, dropout_p: float = 0.0) -> torch.Tensor:
    """``softmax(scale * q k^T + bias) v``, the attention of every backbone with an additive float term.

    Args:
        q, k, v: ``(..., N, head_dim)`` (``(..., M, head_dim)`` for k, v).
        bias: additive logits term broadcastable to ``(..., N, M)`` (relative position, shift mask) or a
            :class:`DecomposedBias`; cast to ``q.dtype``.
        scale: logit factor, default ``head_dim ** -0.5``.
        dropout_p: dropout on the attention weights (pass 0 outside training).
    Returns:
        ``(..., N, head_dim)``.

    ``F.scaled_dot_product_attention`` everywhere (inference, GPU, constant masks), except CPU training with a
    bias that requires grad: there SDPA falls back to its math path, which is slower than the explicit form
    below. Measured forward+backward of the attention modules (interleaved repetitions, medians, SDPA ->
    explicit; 1 thread, 9 reps / 2 threads, 7 reps): ViTDet ViT-B windowed block on a 32x32 grid 174 -> 158 ms
    (1.10x) / 596 -> 553 ms (1.08x); ViTAEv2-VSA stage-1 window attention 100x152: 1.07x / 1.08x; Swin-T
    stage-1 windows 112x112: unshifted 1.31x / 1.34x, shifted 1.13x / 1.26x. A :class:`DecomposedBias` is added
    by broadcasting on the explicit path (ViTDet global block, 64x64 grid, forward+backward: 2.50 -> 1.99 s,
    peak 2390 -> 1670 MiB, against 2.11 s / 2402 MiB for the naive form). Inference keeps the fused SDPA kernel.
    """
    bias = bias.to(q.dtype)
    if isinstance(bias, torch.Tensor) and bias.dim() < q.dim():
        # leading unit dims: SDPA on CPU was 25 % slower with a 3-D (heads, N, M) mask than with the same mask as
        # (1, heads, N, M) (VSA attention module, benchmarks.attention_vitaev2 --quick: 0.84x vs 1.08x naive)
        bias = bias.view((1,) * (q.dim() - bias.dim()) + tuple(bias.shape))
    if not (EXPLICIT_BIAS_ATTENTION_ON_CPU and q.device.type == "cpu" and bias.requires_grad
            and torch.is_grad_enabled()):
        dense = bias.dense() if isinstance(bias, DecomposedBias) else bias
        return F.scaled_dot_product_attention(q, k, v, attn_mask=dense, dropout_p=dropout_p, scale=scale)
    scale = q.shape[-1] ** -0.5 if scale is None else scale
    logits = torch.matmul(q, k.transpose(-2, -1))
    if scale != 1.0:
        logits = logits.mul_(scale)
    logits = bias.add_to(logits) if isinstance(bias, DecomposedBias) else logits + bias
    weights = logits.softmax(dim=-1)
    if dropout_p > 0.0:
        weights = F.dropout(weights, dropout_p)
    return torch.matmul(weights, v)


def pad_to_multiple(x: torch.Tensor, window: int | tuple[int, int]) -> tuple[torch.Tensor, int, int]:
    """Zero-pad a ``(B, H, W, C)`` map on the right/bottom so H and W are multiples of the window.

    Returns the padded map and the padded sizes ``(Hp, Wp)``.
    """
    wh, ww = (window, window) if isinstance(window, int) else window
    _, h, w, _ = x.shape
    pad_b = (wh - h % wh) % wh
    pad_r = (ww - w % ww) % ww
    if pad_b or pad_r:
        x = F.pad(x, (0, 0, 0, pad_r, 0, pad_b))
    return x, h + pad_b, w + pad_r


def window_partition(x: torch.Tensor, window: int | tuple[int, int]) -> torch.Tensor:
    """``(B, H, W, C)`` with H, W multiples of the window -> ``(B * nW, wh, ww, C)``, windows row-major."""
    wh, ww = (window, window) if isinstance(window, int) else window
    b, h, w, c = x.shape
    x = x.view(b, h // wh, wh, w // ww, ww, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, wh, ww, c)


def window_reverse(windows: torch.Tensor, window: int | tuple[int, int], h: int, w: int) -> torch.Tensor:
    """Inverse of :func:`window_partition`: ``(B * nW, wh, ww, C)`` -> ``(B, H, W, C)``."""
    wh, ww = (window, window) if isinstance(window, int) else window
    c = windows.shape[-1]
    b = windows.shape[0] // ((h // wh) * (w // ww))
    x = windows.view(b, h // wh, w // ww, wh, ww, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, c)


def relative_position_index(window: int | tuple[int, int]) -> torch.Tensor:
    """The ``(wh*ww, wh*ww)`` int64 index into a ``((2wh-1)*(2ww-1), heads)`` bias table (Swin layout)."""
    wh, ww = (window, window) if isinstance(window, int) else window
    coords = torch.stack(torch.meshgrid(torch.arange(wh), torch.arange(ww), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0)
    rel[:, :, 0] += wh - 1
    rel[:, :, 1] += ww - 1
    rel[:, :, 0] *= 2 * ww - 1
    return rel.sum(-1)


def resize_relative_position_table(table: torch.Tensor, new_len: int) -> torch.Tensor:
    """Bicubically resize a ``(L, heads)`` square relative-position table to ``(new_len, heads)``.

    (L, nH) -> (1, nH, S, S) -> bicubic (align_corners=False) -> (new_len, nH), as the official loaders do.
    """
    old_len, heads = table.shape
    s_old, s_new = int(round(old_len ** 0.5)), int(round(new_len ** 0.5))
    grid = table.permute(1, 0).reshape(1, heads, s_old, s_old)
    grid = F.interpolate(grid, size=(s_new, s_new), mode="bicubic", align_corners=False)
    return grid.reshape(heads, new_len).permute(1, 0).contiguous()


def adapt_relative_position_entries(state_dict: "OrderedDict[str, torch.Tensor]", model: nn.Module,
                                    logger: logging.Logger) -> None:
    """Make the checkpoint's window-attention entries fit ``model`` (in place).

    * ``relative_position_bias_table`` of another length (classification window size) is resized bicubically
      (align_corners=False); one with another head count cannot be used and is dropped with a warning.
    * ``relative_position_index`` is derived from the window size, so the model's own buffer is kept (the
      checkpoint's copy is replaced; it only differs when the window size differs); an index the model has no
      buffer for (e.g. of attention without a bias table) is dropped.
    """
    own = model.state_dict()
    resized, replaced = [], []
    for key in [k for k in state_dict if k.endswith("relative_position_bias_table")]:
        if key not in own:
            continue
        table, target = state_dict[key], own[key]
        if table.shape[1] != target.shape[1]:
            logger.warning(f"{key}: checkpoint table has {table.shape[1]} heads, the model {target.shape[1]}; "
                           f"not loaded")
            del state_dict[key]
        elif table.shape[0] != target.shape[0]:
            state_dict[key] = resize_relative_position_table(table.float(), target.shape[0]).to(table.dtype)
            resized.append(key)
    dropped = []
    for key in [k for k in state_dict if k.endswith("relative_position_index")]:
        if key not in own:
            del state_dict[key]
            dropped.append(key)
            continue
        if state_dict[key].shape != own[key].shape or not torch.equal(state_dict[key], own[key]):
            replaced.append(key)
        state_dict[key] = own[key]
    if resized:
        logger.info(f"resized {len(resized)} relative_position_bias_table(s) bicubically to the model's window: "
                    f"{', '.join(resized)}")
    if replaced:
        logger.info(f"kept the model's relative_position_index (window size differs from the checkpoint's) "
                    f"for {len(replaced)} blocks")
    if dropped:
        logger.info(f"dropped {len(dropped)} relative_position_index buffers the model does not have: "
                    + ", ".join(dropped))


def unwrap_moby_encoder(state_dict: Mapping) -> Mapping:
    """MoBY self-supervised layout (first key ``encoder*``): only the online ``encoder.`` branch, prefix removed;
    any other state_dict is returned as is."""
    if state_dict and sorted(state_dict)[0].startswith("encoder"):
        return OrderedDict((k[len("encoder."):], v) for k, v in state_dict.items() if k.startswith("encoder."))
    return state_dict


# ---------------------------------------------------------------------------------------------------------------
# shifted-window attention (Swin, Swin-Visformer)
# ---------------------------------------------------------------------------------------------------------------

SHIFT_MASK_VALUE = -100.0


def pad_hw_to_window(h: int, w: int, window: int) -> tuple[int, int]:
    """Right/bottom zero padding ``(pad_h, pad_w)`` that makes ``h`` and ``w`` multiples of ``window``."""
    return (window - h % window) % window, (window - w % window) % window


def shift_window_mask(hp: int, wp: int, window: int, shift: int, device=None) -> torch.Tensor:
    """Additive mask of shifted-window attention on a padded ``hp x wp`` grid.

    The grid is cut into 3 x 3 regions by the row/column boundaries ``[0, hp-window)``, ``[hp-window, hp-shift)``,
    ``[hp-shift, hp)`` (same for columns); two tokens of one window that lie in different regions get -100.

    Returns:
        ``(nW, window*window, window*window)`` float32, windows row-major (``nW = hp/window * wp/window``).
    """
    def region(size: int) -> torch.Tensor:
        idx = torch.arange(size, device=device)
        return (idx >= size - window).long() + (idx >= size - shift).long()

    labels = region(hp)[:, None] * 3 + region(wp)[None, :]                       # (hp, wp)
    labels = labels.view(hp // window, window, wp // window, window).permute(0, 2, 1, 3)
    labels = labels.reshape(-1, window * window)                                  # (nW, N)
    different = labels[:, :, None] != labels[:, None, :]
    return different.float() * SHIFT_MASK_VALUE


class ShiftMaskCache:
    """Shift masks of one stage, built once per padded ``(hp, wp, device)`` and kept for the most recent sizes.

    Multi-scale training meets many input sizes, so at most ``max_entries`` masks are kept (least recently used
    dropped first).
    """

    def __init__(self, window: int, shift: int, max_entries: int = 32):
        self.window, self.shift, self.max_entries = window, shift, max_entries
        self._masks: OrderedDict[tuple, torch.Tensor] = OrderedDict()

    def get(self, h: int, w: int, device) -> torch.Tensor:
        """``(nW, N, N)`` mask for an ``h x w`` map padded right/bottom to window multiples."""
        pad_h, pad_w = pad_hw_to_window(h, w, self.window)
        key = (h + pad_h, w + pad_w, str(device))
        mask = self._masks.get(key)
        if mask is None:
            mask = shift_window_mask(h + pad_h, w + pad_w, self.window, self.shift, device)
            self._masks[key] = mask
            if len(self._masks) > self.max_entries:
                self._masks.popitem(last=False)
        else:
            self._masks.move_to_end(key)
        return mask


class WindowAttentionBase(nn.Module):
    """Relative-position bias table + index of a square window, and the fused windowed attention.

    State-dict entries: ``relative_position_bias_table`` ``((2w-1)^2, heads)`` (trunc-normal 0.02 at construction)
    and the persistent int64 buffer ``relative_position_index`` ``(w^2, w^2)`` (Swin layout).

    Args:
        window_size: side ``w`` of the square window.
        num_heads: attention heads.
        scale: factor of the logits ``scale * q.k`` (given to ``F.scaled_dot_product_attention``).
        attn_drop: dropout on the attention weights (training only).
    """

    def __init__(self, window_size: int, num_heads: int, scale: float, attn_drop: float = 0.0):
        super().__init__()
        self.window_size = window_size
        self.num_heads = num_heads
        self.scale = scale
        self.attn_drop = attn_drop
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer("relative_position_index", relative_position_index(window_size))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def relative_position_bias(self) -> torch.Tensor:
        """``(heads, N, N)`` bias gathered from the table, ``N = w*w``."""
        n = self.window_size ** 2
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        return bias.view(n, n, self.num_heads).permute(2, 0, 1)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
               shift_mask: torch.Tensor | None) -> torch.Tensor:
        """``softmax(scale * q k^T + bias [+ shift_mask]) v`` per window and head.

        Args:
            q, k, v: ``(B, nW, heads, N, head_dim)``.
            shift_mask: ``(nW, N, N)`` additive mask, or None for unshifted windows.
        Returns:
            ``(B, nW, heads, N, head_dim)``.
        """
        b, nw, heads, n, hd = q.shape
        bias = self.relative_position_bias()
        if shift_mask is None:   # same additive mask for every window: fold windows into the batch
            q, k, v = (t.reshape(b * nw, heads, n, hd) for t in (q, k, v))
            attn_mask = bias.unsqueeze(0)
        else:                    # per-window masks: fold windows into the head dim, broadcast over the batch
            q, k, v = (t.reshape(b, nw * heads, n, hd) for t in (q, k, v))
            attn_mask = (shift_mask.unsqueeze(1) + bias.unsqueeze(0)).reshape(1, nw * heads, n, n)
        out = attention_with_bias(q, k, v, attn_mask, scale=self.scale,
                                  dropout_p=self.attn_drop if self.training else 0.0)
        return out.view(b, nw, heads, n, hd)


def shifted_window_attention(x: torch.Tensor, attn: Callable[[torch.Tensor, torch.Tensor | None], torch.Tensor],
                             window: int, shift: int, shift_mask: torch.Tensor | None,
                             hw_dims: tuple[int, int] = (1, 2)) -> torch.Tensor:
    """Zero-pad right/bottom to window multiples, roll by ``-shift``, ``attn``, roll back, crop.

    Args:
        x: a map whose spatial dims are ``hw_dims`` (adjacent): ``(B, H, W, C)`` with ``(1, 2)`` or
            ``(B, C, H, W)`` with ``(2, 3)``.
        attn: ``attn(padded map, mask)`` -> map of the same shape; ``mask`` is ``shift_mask`` when ``shift`` > 0,
            else None.
        shift: cyclic shift of the windows (0: plain windows).
        shift_mask: ``(nW, N, N)`` mask of the padded grid (see :class:`ShiftMaskCache`), used only when shifted.
    Returns:
        Same shape as ``x``.
    """
    h_dim, w_dim = hw_dims
    h, w = x.shape[h_dim], x.shape[w_dim]
    pad_h, pad_w = pad_hw_to_window(h, w, window)
    if pad_h or pad_w:
        x = F.pad(x, (0, 0) * (x.dim() - 1 - w_dim) + (0, pad_w, 0, pad_h))
    if shift:
        x = torch.roll(x, shifts=(-shift, -shift), dims=hw_dims)
    x = attn(x, shift_mask if shift else None)
    if shift:
        x = torch.roll(x, shifts=(shift, shift), dims=hw_dims)
    if pad_h or pad_w:
        x = x.narrow(h_dim, 0, h).narrow(w_dim, 0, w)
    return x
