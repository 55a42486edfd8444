"""ViTDet attention: ours (``RelPosAttention``: F.scaled_dot_product_attention with the decomposed
rel-pos term as additive float mask) vs a naive ``softmax(QKᵀ + B) V`` of the same math (the official
fork's order: scaled q, q @ kᵀ, rel-pos added in place, softmax, @ v).

Cases at ViT-B width (768 channels, 12 heads): a windowed block (14x14 windows, grid padded to a
multiple of 14) and a global block, inference and forward+backward. Reports median times, peak memory
and the max abs difference of the outputs; the last line is ``RESULT key=value ...`` with
``*_speedup`` = reference time / our time and ``*_mem_ratio`` = reference peak / our peak.

    python -m benchmarks.attention_vitdet --quick     # grid 32x32 (< 2 min on 2 CPU cores)
    python -m benchmarks.attention_vitdet             # grid 64x64 = 1024x1024 input
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import base_parser, machine_line, peak_memory_bytes, print_result, setup, time_interleaved
from mmdet.models.layers.transformer import pad_to_multiple, window_partition, window_reverse
from mmdet.models.layers.vitdet_blocks import RelPosAttention, decomposed_rel_pos_index


def reference_attention(attn: RelPosAttention, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """Naive math: pad, partition, qkv, (q*s) @ kᵀ + rel_h + rel_w (materialised), softmax, @ v, proj, crop."""
    b, n, c = x.shape
    heads = attn.num_heads
    size = (attn.window_size if attn.windowed else (h, w))
    grid = x.view(b, h, w, c)
    if attn.windowed:
        grid, hp, wp = pad_to_multiple(grid, size)
        tokens = window_partition(grid, size).reshape(-1, size[0] * size[1], c)
    else:
        hp, wp = h, w
        tokens = x
    bw, nw, _ = tokens.shape
    qkv = F.linear(tokens, attn.qkv.weight, attn.qkv_bias_vector())
    q, k, v = qkv.reshape(bw, nw, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    q = q * attn.scale
    logits = q @ k.transpose(-2, -1)
    index_h = decomposed_rel_pos_index(size[0], size[0])
    index_w = decomposed_rel_pos_index(size[1], size[1])
    r_q = q.reshape(bw, heads, size[0], size[1], -1)
    rel_h = torch.einsum("byhwc,hkc->byhwk", r_q, attn.rel_pos_h[index_h])
    rel_w = torch.einsum("byhwc,wkc->byhwk", r_q, attn.rel_pos_w[index_w])
    logits = (logits.view(bw, heads, size[0], size[1], size[0], size[1]) + rel_h[..., :, None]
              + rel_w[..., None, :]).view(bw, heads, nw, nw)
    out = (logits.softmax(dim=-1) @ v).transpose(1, 2).reshape(bw, nw, c)
    out = attn.proj(out)
    if attn.windowed:
        out = window_reverse(out.view(-1, size[0], size[1], c), size, hp, wp)[:, :h, :w]
    return out.reshape(b, n, c)


def make_attention(windowed: bool, grid: int, dim: int, heads: int) -> RelPosAttention:
    attn = RelPosAttention(dim, heads, qkv_bias=True, window_size=(14, 14) if windowed else (grid, grid),
                           windowed=windowed)
    with torch.no_grad():
        attn.rel_pos_h.normal_(0, 0.5)
        attn.rel_pos_w.normal_(0, 0.5)
    return attn.eval()


def run_case(name: str, attn: RelPosAttention, x: torch.Tensor, grid: int, reps: int, device, train: bool):
    def ours():
        if train:
            attn(x, grid, grid).sum().backward()
        else:
            with torch.no_grad():
                attn(x, grid, grid)

    def ref():
        if train:
            reference_attention(attn, x, grid, grid).sum().backward()
        else:
            with torch.no_grad():
                reference_attention(attn, x, grid, grid)

    with torch.no_grad():
        diff = (attn(x, grid, grid) - reference_attention(attn, x, grid, grid)).abs().max().item()
    times = time_interleaved({"ours": ours, "ref": ref}, reps=reps, device=device)
    mem_ours, mem_ref = peak_memory_bytes(ours, device), peak_memory_bytes(ref, device)
    print(f"{name:<18} ours {times['ours'] * 1e3:8.1f} ms  ref {times['ref'] * 1e3:8.1f} ms  "
          f"speedup {times['ref'] / times['ours']:.2f}x  peak ours {mem_ours / 2**20:7.1f} MiB  "
          f"ref {mem_ref / 2**20:7.1f} MiB  max|diff| {diff:.2e}", flush=True)
    return times["ref"] / times["ours"], mem_ref / max(mem_ours, 1), diff


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=None, help="token grid side (default 32 quick, 64 full)")
    args = parser.parse_args()
    setup(args)
    grid = args.grid or (32 if args.quick else 64)
    reps = args.reps or (3 if args.quick else 7)
    dim, heads = 768, 12
    print(machine_line())
    print(f"grid {grid}x{grid} tokens (input {grid * 16} px), dim {dim}, {heads} heads, batch 1, {reps} reps")
    x = torch.randn(1, grid * grid, dim, device=args.device)
    results = {}
    for windowed in (True, False):
        attn = make_attention(windowed, grid, dim, heads).to(args.device)
        kind = "window" if windowed else "global"
        for train in (False, True):
            attn.zero_grad(set_to_none=True)
            label = f"{kind}_{'fwdbwd' if train else 'infer'}"
            results[label] = run_case(label, attn, x, grid, reps, args.device, train)
    print_result(**{f"{k}_speedup": v[0] for k, v in results.items()},
                 **{f"{k}_mem_ratio": v[1] for k, v in results.items()},
                 max_abs_diff=f"{max(v[2] for v in results.values()):.1e}", grid=grid)


if __name__ == "__main__":
    main()
