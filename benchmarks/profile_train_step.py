"""CPU training-step profile of ViTAEv2-S and ViTDet ViT-B Mask R-CNN: s/iter and the top self-CPU ops.

A step is forward, ``_parse_losses``, backward and an AdamW step (lr 1e-4, weight decay 0.05) on random images
with random ground-truth boxes and box-filling masks (``benchmarks.maskrcnn_cpu.synthetic_detection_batch``), the
seed configs' detectors with random weights (``benchmarks.gpu_train_step.build_detector_from``). s/iter is the
median over interleaved repetitions after one warm-up step; the profile is one more step under torch.profiler.

``--ab-attention`` also times every case with :func:`mmdet.models.layers.transformer.attention_with_bias`
forced onto ``F.scaled_dot_product_attention`` ("sdpa") against the shipped dispatch ("ours"), interleaved in the
same process, to measure the explicit CPU path inside the full step.

    python -m benchmarks.profile_train_step --quick           # 480x640 and 512x512, batch 1, 2 reps
    python -m benchmarks.profile_train_step                   # 800x1216 both, ViTDet also 1024x1024
    python -m benchmarks.profile_train_step --ab-attention    # + SDPA-forced vs dispatch, interleaved

Last line: ``RESULT <case>_s_per_iter=... [<case>_sdpa_s_per_iter=...] ...``.
"""
from __future__ import annotations

import torch

from benchmarks.common import base_parser, machine_line, print_result, setup, time_interleaved

#: model -> seed config
MODELS = {
    "vitaev2_s": "configs/vitaev2/mask_rcnn_vitaev2_s_mstrain_480-800_adamw_1x_coco.py",
    "vitdet_b": "configs/vitdet/ViTDet-ViT-Base-100e.py",
}
FULL_CASES = [("vitaev2_s", (800, 1216)), ("vitdet_b", (800, 1216)), ("vitdet_b", (1024, 1024))]
QUICK_CASES = [("vitaev2_s", (480, 640)), ("vitdet_b", (512, 512))]
NUM_GT = 5


def train_step_fn(model, data: dict):
    """Forward, losses, backward and AdamW step as a zero-argument callable."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)

    def step():
        loss, _ = model._parse_losses(model(**data))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def sdpa_forced(step):
    """``step`` run with ``attention_with_bias`` always taking the SDPA path (the pre-dispatch behaviour)."""
    from mmdet.models.layers import transformer

    def run():
        saved = transformer.EXPLICIT_BIAS_ATTENTION_ON_CPU
        transformer.EXPLICIT_BIAS_ATTENTION_ON_CPU = False
        try:
            step()
        finally:
            transformer.EXPLICIT_BIAS_ATTENTION_ON_CPU = saved

    return run


def top_ops(step, rows: int) -> None:
    """Print the ``rows`` ops with the most self CPU time in one step, with their share of the step."""
    from torch.profiler import ProfilerActivity, profile
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    print(f"  {'op':<44}{'self CPU s':>11}{'share':>8}{'calls':>8}")
    for e in events[:rows]:
        print(f"  {e.key[:43]:<44}{e.self_cpu_time_total / 1e6:11.3f}{100 * e.self_cpu_time_total / total:7.1f}%"
              f"{e.count:8d}")


def main(argv: list[str] | None = None) -> None:
    from benchmarks.gpu_train_step import build_detector_from
    from benchmarks.maskrcnn_cpu import synthetic_detection_batch
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(MODELS), help="profile only these models")
    parser.add_argument("--size", type=int, nargs=2, metavar=("H", "W"), help="one input size for every model")
    parser.add_argument("--batch", type=int, default=1, help="images per step (default 1)")
    parser.add_argument("--rows", type=int, default=15, help="top ops printed per case")
    parser.add_argument("--ab-attention", action="store_true",
                        help="also time each case with attention_with_bias forced onto SDPA (interleaved)")
    parser.add_argument("--no-profile", action="store_true", help="timings only")
    args = parser.parse_args(argv)
    setup(args)
    reps = args.reps or (2 if args.quick else 3)
    cases = QUICK_CASES if args.quick else FULL_CASES
    if args.size:
        cases = list(dict.fromkeys((name, tuple(args.size)) for name, _ in cases))
    cases = [(name, size) for name, size in cases if not args.only or name in args.only]
    print(machine_line())
    print(f"batch {args.batch}, {NUM_GT} gt instances per image, {reps} reps (interleaved, medians), AdamW step")
    result = {}
    for name, (height, width) in cases:
        torch.manual_seed(0)
        model = build_detector_from(MODELS[name], checkpointing=False).train()
        data = synthetic_detection_batch(args.batch, height, width, NUM_GT, "cpu")
        step = train_step_fn(model, data)
        candidates = {"ours": step}
        if args.ab_attention:
            candidates["sdpa"] = sdpa_forced(step)
        times = time_interleaved(candidates, reps=reps)
        key = f"{name}_{height}x{width}"
        line = f"{key}: {times['ours']:.3f} s/iter"
        result[f"{key}_s_per_iter"] = times["ours"]
        if args.ab_attention:
            line += f"  (SDPA forced: {times['sdpa']:.3f} s/iter, speedup {times['sdpa'] / times['ours']:.3f}x)"
            result[f"{key}_sdpa_s_per_iter"] = times["sdpa"]
        print(line, flush=True)
        if not args.no_profile:
            top_ops(step, args.rows)
        del model, data, step, candidates
    print_result(**result, batch=args.batch)


if __name__ == "__main__":
    main()
