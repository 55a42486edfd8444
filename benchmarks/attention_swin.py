"""Shifted-window attention of SwinTransformer and SwinVisformer vs a naive softmax(QK^T + B + M) V.

Our modules (``WindowAttention``, ``ConvWindowAttention``) gather the relative-position bias, add the cached
shift mask and run ``F.scaled_dot_product_attention`` on all windows at once. The reference computes the same
math step by step as the official code does (window partition, explicit logits, bias and mask additions,
softmax, weighted sum, window reverse) with the same weights. For every case the script checks that both give
the same output, then reports median times (forward under no_grad, and forward + backward) and peak memory.

Cases are the shifted blocks of the published models at a 800 x 1216 input (``--quick``: 400 x 608, batch 1):
Swin-T stages 0 and 2, VisformerV2-S stages 2 and 3. The last line is
``RESULT <case>_<fwd|train>_speedup=ref/ours ... <case>_mem_ratio=ref/ours ... max_abs_diff=...``.

On CPU the fused SDPA kernel returns no gradient for a float mask, so while the bias table trains PyTorch runs
its math backend and forward + backward is not faster than the reference; the inference forward uses the fused
kernel.

Run from the repository root: ``python -m benchmarks.attention_swin [--quick] [--device cuda]``.
"""
from __future__ import annotations

import torch

from benchmarks.common import base_parser, machine_line, peak_memory_bytes, print_result, setup, time_interleaved
from mmdet.models.backbones.swin_transformer import ShiftMaskCache, WindowAttention
from mmdet.models.backbones.swin_visformer import ConvWindowAttention
from mmdet.models.layers.transformer import window_partition, window_reverse


def naive_swin_attention(attn: WindowAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference for :class:`WindowAttention` on a padded, shifted ``(B, Hp, Wp, C)`` map (official step order)."""
    b, hp, wp, c = x.shape
    ws, heads = attn.window_size, attn.num_heads
    n = ws * ws
    windows = window_partition(x, ws).view(-1, n, c)
    qkv = attn.qkv(windows).view(-1, n, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q, k, v = qkv[0] * attn.scale, qkv[1], qkv[2]
    logits = q @ k.transpose(-2, -1) + attn.relative_position_bias().unsqueeze(0)
    nw = mask.shape[0]
    logits = logits.view(-1, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
    weights = logits.view(-1, heads, n, n).softmax(dim=-1)
    out = (weights @ v).transpose(1, 2).reshape(-1, ws, ws, c)
    return attn.proj(window_reverse(out, ws, hp, wp))


def naive_visformer_attention(attn: ConvWindowAttention, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Reference for :class:`ConvWindowAttention` on a padded, shifted ``(B, C, Hp, Wp)`` map (official step order)."""
    b, c, hp, wp = x.shape
    ws, heads, hd = attn.window_size, attn.num_heads, attn.head_dim
    n = ws * ws
    windows = window_partition(x.permute(0, 2, 3, 1), ws).permute(0, 3, 1, 2)          # (B*nW, C, ws, ws)
    qkv = attn.qkv(windows).view(-1, 3, heads, hd, n).permute(1, 0, 2, 4, 3)            # (3, B*nW, h, N, hd)
    s = attn.scale ** 0.5
    logits = (qkv[0] * s) @ (qkv[1].transpose(-2, -1) * s) + attn.relative_position_bias().unsqueeze(0)
    nw = mask.shape[0]
    logits = logits.view(-1, nw, heads, n, n) + mask.unsqueeze(1).unsqueeze(0)
    weights = logits.view(-1, heads, n, n).softmax(dim=-1)
    out = (weights @ qkv[2]).transpose(-2, -1).reshape(-1, heads * hd, ws, ws)          # (B*nW, h*hd, ws, ws)
    out = window_reverse(out.permute(0, 2, 3, 1), ws, hp, wp).permute(0, 3, 1, 2)
    return attn.proj(out)


def build_cases(scale: int, batch: int, device) -> dict:
    """name -> (module, naive fn, input, shift mask); maps of a (800/scale) x (1216/scale) image."""
    def padded(size: int, ws: int) -> int:
        return -(-size // ws) * ws

    specs = {  # name: (kind, stride, channels, heads, window, qk_scale)
        "swin_s0": ("swin", 4, 96, 3, 7, None),
        "swin_s2": ("swin", 16, 384, 12, 7, None),
        "visformer_s2": ("visformer", 16, 256, 8, 14, -0.5),
        "visformer_s3": ("visformer", 32, 512, 16, 7, -0.5),
    }
    cases = {}
    for name, (kind, stride, dim, heads, ws, qk_scale) in specs.items():
        h = padded(-(-800 // (stride * scale)), ws)
        w = padded(-(-1216 // (stride * scale)), ws)
        mask = ShiftMaskCache(ws, ws // 2).get(h, w, device)
        if kind == "swin":
            module = WindowAttention(dim, ws, heads, qkv_bias=True, qk_scale=qk_scale)
            x = torch.randn(batch, h, w, dim)
            naive = naive_swin_attention
        else:
            module = ConvWindowAttention(dim, ws, heads, qkv_bias=False, qk_scale=qk_scale)
            x = torch.randn(batch, dim, h, w)
            naive = naive_visformer_attention
        with torch.no_grad():   # a bias table of the trained scale (not ~0) so the bias matters numerically
            module.relative_position_bias_table.normal_(0, 1)
        cases[name] = (module.to(device), naive, x.to(device), mask)
    return cases


def main() -> None:
    parser = base_parser(__doc__.splitlines()[0])
    args = parser.parse_args()
    setup(args)
    reps = args.reps or (3 if args.quick else 7)
    scale, batch = (2, 1) if args.quick else (1, 2)
    print(machine_line())
    print(f"input {800 // scale}x{1216 // scale}, batch {batch}, {reps} interleaved repetitions, medians")
    results: dict[str, float] = {}
    worst_diff = 0.0
    for name, (module, naive, x, mask) in build_cases(scale, batch, args.device).items():
        with torch.no_grad():
            ours_out, ref_out = module(x, mask), naive(module, x, mask)
        diff = (ours_out - ref_out).abs().max().item()
        worst_diff = max(worst_diff, diff)
        torch.testing.assert_close(ours_out, ref_out, atol=1e-4, rtol=1e-4)

        def fwd(fn):
            def run():
                with torch.no_grad():
                    fn()
            return run

        def train(fn):
            def run():
                xi = x.detach().requires_grad_()
                out = fn(xi)
                out.sum().backward()
            return run

        ours_fn = lambda inp=x: module(inp, mask)            # noqa: E731
        ref_fn = lambda inp=x: naive(module, inp, mask)      # noqa: E731
        t_fwd = time_interleaved({"ours": fwd(ours_fn), "ref": fwd(ref_fn)}, reps, device=args.device)
        t_train = time_interleaved({"ours": train(ours_fn), "ref": train(ref_fn)}, reps, device=args.device)
        mem_ours = peak_memory_bytes(train(ours_fn), device=args.device)
        mem_ref = peak_memory_bytes(train(ref_fn), device=args.device)
        print(f"{name:13s} shape {tuple(x.shape)}: fwd ours {t_fwd['ours'] * 1e3:8.2f} ms ref "
              f"{t_fwd['ref'] * 1e3:8.2f} ms | fwd+bwd ours {t_train['ours'] * 1e3:8.2f} ms ref "
              f"{t_train['ref'] * 1e3:8.2f} ms | peak fwd+bwd ours {mem_ours / 2 ** 20:8.1f} MiB ref "
              f"{mem_ref / 2 ** 20:8.1f} MiB | max abs diff {diff:.2e}", flush=True)
        results[f"{name}_fwd_speedup"] = t_fwd["ref"] / t_fwd["ours"]
        results[f"{name}_train_speedup"] = t_train["ref"] / t_train["ours"]
        results[f"{name}_mem_ratio"] = mem_ref / max(mem_ours, 1)
    print_result(**results, max_abs_diff=f"{worst_diff:.2e}")


if __name__ == "__main__":
    main()
