"""ViTAEv2 / VSA attention: our SDPA-based kernels vs a naive ``softmax(q k^T * s + B) v`` of the same math.

Cases (shapes of ViTAEv2-S / ViTAEv2*-S+VSA at an 800x1216 input; --quick: 480x640):

* ``window``: 7x7-window attention with a relative-position bias (additive float mask),
  forward + backward, on the stage-0 normal-cell shapes;
* ``global``: full MHSA of the stride-16 stage (ViTAEv2-S stages 2-3), forward + backward;
* ``window_module``: the ViTAEv2 window-attention module (``TokenAttention``: pad after
  norm, partition, attention, crop, proj) vs a naive re-implementation, inference;
* ``vsa_module``: the VSA attention module (sampling grid, grid_sample of k/v, biased
  window attention) vs a naive re-implementation on the same sampling grid, inference.

Each pair is checked with ``torch.testing.assert_close``; timings are interleaved medians and
memory is the peak allocated while one call runs. Ratios are reference / ours (> 1: ours wins).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import base_parser, machine_line, peak_memory_bytes, print_result, setup, time_interleaved
from mmdet.models.layers.vitae_cells import TokenAttention, VSAWindowAttention, floor_split_padding
from mmdet.models.layers.transformer import window_partition, window_reverse


def naive_attention(q, k, v, scale, bias=None):
    """``softmax(q k^T * scale + bias) v`` with the full logits materialised."""
    logits = q @ k.transpose(-2, -1) * scale
    if bias is not None:
        logits = logits + bias
    return logits.softmax(-1) @ v


def padded(x: torch.Tensor, window: int):
    """Zero-pad ``(B, H, W, C)`` with top/left = floor; returns the map and (top, left)."""
    (top, bottom), (left, right) = floor_split_padding(x.shape[1], window), floor_split_padding(x.shape[2], window)
    return F.pad(x, (0, 0, left, right, top, bottom)), top, left


def naive_window_module(attn: TokenAttention, x: torch.Tensor) -> torch.Tensor:
    """Reference for the windowed ``TokenAttention``: partition, per-window naive attention, reverse, crop."""
    b, h, w, _ = x.shape
    ws, heads = attn.window_size, attn.num_heads
    xp, top, left = padded(x, ws)
    hp, wp = xp.shape[1:3]
    windows = window_partition(xp, ws).reshape(-1, ws * ws, xp.shape[-1])
    qkv = attn.qkv(windows).reshape(windows.shape[0], ws * ws, 3, heads, -1).permute(2, 0, 3, 1, 4)
    out = naive_attention(qkv[0], qkv[1], qkv[2], attn.scale)
    out = out.transpose(1, 2).reshape(-1, ws, ws, attn.out_dim)
    out = window_reverse(out, ws, hp, wp)[:, top:top + h, left:left + w]
    return attn.proj(out)


def naive_vsa_module(attn: VSAWindowAttention, x: torch.Tensor) -> torch.Tensor:
    """Reference for ``VSAWindowAttention``: NCHW 1x1 convs, separate k / v sampling, naive biased attention."""
    b, h, w, _ = x.shape
    ws, heads, c = attn.window_size, attn.num_heads, attn.out_dim
    xp, top, left = padded(x, ws)
    hp, wp = xp.shape[1:3]
    grid = attn.sampling_grid(xp, h, w, hp // ws, wp // ws)
    qkv = attn.qkv(x.permute(0, 3, 1, 2))
    qkv = F.pad(qkv, (left, wp - w - left, top, hp - h - top)).view(b, 3, heads, c // heads, hp, wp)
    q, k, v = qkv.unbind(1)
    sample = dict(mode="bilinear", padding_mode="zeros", align_corners=True)
    k = F.grid_sample(k.reshape(b * heads, -1, hp, wp), grid, **sample).view(b, heads, -1, hp, wp)
    v = F.grid_sample(v.reshape(b * heads, -1, hp, wp), grid, **sample).view(b, heads, -1, hp, wp)

    def to_windows(t):  # (b, heads, hd, hp, wp) -> (b * nW, heads, ws * ws, hd)
        t = t.reshape(b, heads, -1, hp // ws, ws, wp // ws, ws).permute(0, 3, 5, 1, 4, 6, 2)
        return t.reshape(-1, heads, ws * ws, t.shape[-1])

    out = naive_attention(to_windows(q), to_windows(k), to_windows(v), attn.scale, attn.relative_position_bias())
    out = out.view(b, hp // ws, wp // ws, heads, ws, ws, -1).permute(0, 3, 6, 1, 4, 2, 5).reshape(b, c, hp, wp)
    out = attn.proj(out[:, :, top:top + h, left:left + w])
    return out.permute(0, 2, 3, 1)


def fwd_bwd(fn, *tensors):
    def run():
        out = fn(*tensors)
        out.sum().backward()
        for t in tensors:
            t.grad = None
        return out
    return run


def compare(name, ours, ref, reps, device, atol, rtol, results):
    """Check, time and measure one pair; the ``*_module`` cases run as inference (``no_grad``)."""
    with torch.no_grad() if name.endswith("module") else torch.enable_grad():
        torch.testing.assert_close(ours(), ref(), atol=atol, rtol=rtol)
        times = time_interleaved({"ours": ours, "ref": ref}, reps=reps, device=device)
        mem_ours, mem_ref = peak_memory_bytes(ours, device), peak_memory_bytes(ref, device)
    print(f"{name:14s} ours {times['ours'] * 1e3:9.1f} ms  naive {times['ref'] * 1e3:9.1f} ms  "
          f"speedup {times['ref'] / times['ours']:5.2f}x  peak mem ours {mem_ours / 2**20:8.1f} MiB  "
          f"naive {mem_ref / 2**20:8.1f} MiB", flush=True)
    results[f"{name}_speedup"] = times["ref"] / times["ours"]
    results[f"{name}_mem_ratio"] = mem_ref / max(mem_ours, 1)
    results[f"{name}_ms"] = times["ours"] * 1e3


def main():
    args = base_parser(__doc__.splitlines()[0]).parse_args()
    setup(args)
    device = args.device
    reps = args.reps or (3 if args.quick else 7)
    img_h, img_w = (480, 640) if args.quick else (800, 1216)
    print(machine_line())
    print(f"input {img_h}x{img_w}, reps {reps}")
    results = {}

    # window attention + relative-position bias, VSA-S stage-0 normal cell: 64 ch, 2 heads, 7x7 windows
    h, w, heads, hd = img_h // 4, img_w // 4, 2, 32
    n_windows = -(-h // 7) * -(-w // 7)
    q, k, v = (torch.randn(n_windows, heads, 49, hd, device=device, requires_grad=True) for _ in range(3))
    bias = torch.randn(1, heads, 49, 49, device=device)
    scale = hd ** -0.5
    compare("window", fwd_bwd(lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=bias, scale=scale),
                              q, k, v),
            fwd_bwd(lambda a, b, c: naive_attention(a, b, c, scale, bias), q, k, v),
            reps, device, 1e-5, 1e-4, results)

    # global MHSA of ViTAEv2-S stage 2 (stride 16): 256 ch, 4 heads
    n, heads, hd = (img_h // 16) * (img_w // 16), 4, 64
    q, k, v = (torch.randn(1, heads, n, hd, device=device, requires_grad=True) for _ in range(3))
    compare("global", fwd_bwd(lambda a, b, c: F.scaled_dot_product_attention(a, b, c), q, k, v),
            fwd_bwd(lambda a, b, c: naive_attention(a, b, c, hd ** -0.5), q, k, v),
            reps, device, 1e-5, 1e-4, results)

    # ViTAEv2-S stage-0 window attention module (64 ch, 1 head) on an unpadded-size map
    x = torch.randn(1, img_h // 4, img_w // 4, 64, device=device)
    attn = TokenAttention(64, 64, 1, window_size=7).to(device).eval()
    compare("window_module", lambda: attn(x), lambda: naive_window_module(attn, x), reps, device, 1e-5, 1e-4,
            results)

    # VSA-S stage-1 normal-cell attention (128 ch, 4 heads) with non-trivial sampling
    x = torch.randn(1, img_h // 8, img_w // 8, 128, device=device)
    vsa = VSAWindowAttention(128, 4, out_dim=128, window_size=7).to(device).eval()
    with torch.no_grad():
        for seq in (vsa.sampling_offsets, vsa.sampling_scales):
            seq[2].weight.mul_(5.0)
    compare("vsa_module", lambda: vsa(x), lambda: naive_vsa_module(vsa, x), reps, device, 1e-4, 1e-4, results)

    print_result(**{k: v for k, v in results.items() if not k.endswith("_ms")},
                 quick=int(args.quick), device=str(device))


if __name__ == "__main__":
    main()
