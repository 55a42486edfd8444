"""Full Mask R-CNN training steps on one CUDA GPU: seconds per iteration and peak memory.

Cases (seed configs, random weights, 2 images per GPU with 10 random ground-truth instances each):
ViTAEv2-S Mask R-CNN at 800x1216 and ViTDet ViT-B Mask R-CNN at 1024x1024, each in fp32 and bf16 autocast,
with and without activation checkpointing (backbone ``use_checkpoint``). A step is forward, ``_parse_losses``,
backward and an AdamW step (lr 1e-4, weight decay 0.05); s/iter is the median over the timed steps after 2
warm-up steps, peak memory is ``torch.cuda.max_memory_allocated`` over one step (weights, gradients and
optimizer state included, as the seed logs' ``memory``).

Before timing, a parity check: each backbone (eval mode, same weights, same 1x3x224x320 input) run on the CPU and
on CUDA (fp32, TF32 off) must agree within ``torch.testing.assert_close(rtol=PARITY_RTOL, atol=PARITY_ATOL)``:
the CUDA scaled_dot_product_attention kernels against the CPU path.

Reference figures printed next to ours (seed logs, 8x V100/A100, 2 img/GPU): ViTAEv2-S Mask R-CNN 0.51 s/iter with
36 GB peak; ViTDet ViT-B 0.72 s/iter with 34.5 GB; detectron2's ViTDet ViT-B 10.9 GB with AMP.

    python benchmarks/gpu_train_step.py            # 10 timed steps per variant
    python benchmarks/gpu_train_step.py --quick    # 3 timed steps

Last line: ``RESULT <case>_<variant>_s_per_iter=... <case>_<variant>_peak_gb=... parity_max_abs_diff=...``.
On a machine without CUDA it exits with an error message and measures nothing.
"""
from __future__ import annotations

import sys
from pathlib import Path

import torch

from benchmarks.common import base_parser, machine_line, print_result, setup, time_interleaved

ROOT = Path(__file__).resolve().parents[1]
#: case -> (seed config, input H, W)
CASES = {
    "vitaev2_s_mask_rcnn": ("configs/vitaev2/mask_rcnn_vitaev2_s_mstrain_480-800_adamw_1x_coco.py", (800, 1216)),
    "vitdet_vit_b_mask_rcnn": ("configs/vitdet/ViTDet-ViT-Base-100e.py", (1024, 1024)),
}
#: (s/iter, peak GB, where the figure comes from) per case
REFERENCE = {
    "vitaev2_s_mask_rcnn": [(0.51, 36.0, "seed log, 8x V100/A100, 2 img/GPU")],
    "vitdet_vit_b_mask_rcnn": [(0.72, 34.5, "seed log, 8x V100/A100, 2 img/GPU"),
                               (None, 10.9, "detectron2 ViTDet ViT-B, AMP")],
}
VARIANTS = [("fp32", None, False), ("fp32+ckpt", None, True), ("bf16", torch.bfloat16, False),
            ("bf16+ckpt", torch.bfloat16, True)]
IMAGES_PER_GPU = 2
NUM_GT = 10
#: CPU vs CUDA fp32 backbone outputs (TF32 off): different kernels and summation orders through 12+ blocks
PARITY_RTOL = 1e-3
PARITY_ATOL = 1e-3
NO_CUDA_MESSAGE = ("gpu_train_step.py measures CUDA training steps and needs a CUDA device; none is available "
                   "here (torch.cuda.is_available() is False), so nothing was measured. Run it on a GPU machine: "
                   "python benchmarks/gpu_train_step.py")


def build_detector_from(config: str, checkpointing: bool):
    """The seed config's detector, random weights, backbone activation checkpointing on or off."""
    from mmdet.engine import Config
    from mmdet.models import build_detector
    cfg = Config.fromfile(str(ROOT / config))
    cfg.model.pretrained = None
    cfg.model.backbone.pop("init_cfg", None)
    cfg.model.backbone.pop("pretrained", None)
    cfg.model.backbone.use_checkpoint = checkpointing
    model = build_detector(cfg.model)
    model.init_weights()
    return model


def backbone_parity(config: str, device) -> float:
    """Max abs difference of the backbone outputs CPU vs ``device`` (asserted within the parity tolerance)."""
    torch.manual_seed(0)
    backbone = build_detector_from(config, checkpointing=False).backbone.eval()
    x = torch.randn(1, 3, 224, 320)
    matmul_tf32, cudnn_tf32 = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.no_grad():
            expected = [o.clone() for o in backbone(x)]
            actual = [o.cpu() for o in backbone.to(device)(x.to(device))]
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul_tf32, cudnn_tf32
    for level, (a, e) in enumerate(zip(actual, expected)):
        torch.testing.assert_close(a, e, rtol=PARITY_RTOL, atol=PARITY_ATOL,
                                   msg=lambda m, level=level: f"{config} level {level}: CUDA != CPU: {m}")
    return max((a - e).abs().max().item() for a, e in zip(actual, expected))


def train_step_fn(model, data: dict, dtype):
    """One training step (forward under autocast ``dtype``, backward, AdamW step) as a zero-argument callable."""
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.05)

    def step():
        with torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            losses = model(**data)
        loss, _ = model._parse_losses(losses)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return step


def measure(config: str, size: tuple[int, int], dtype, checkpointing: bool, steps: int, device) -> tuple[float, float]:
    """(median s/iter, peak GB) of training steps of the case."""
    from benchmarks.maskrcnn_cpu import synthetic_detection_batch
    torch.manual_seed(0)
    model = build_detector_from(config, checkpointing).to(device).train()
    data = synthetic_detection_batch(IMAGES_PER_GPU, *size, NUM_GT, device)
    step = train_step_fn(model, data, dtype)
    seconds = time_interleaved({"step": step}, reps=steps, warmup=2, device=device)["step"]
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    step()
    torch.cuda.synchronize()
    peak_gb = torch.cuda.max_memory_allocated() / 1e9
    del model, data, step
    torch.cuda.empty_cache()
    return seconds, peak_gb


def main(argv: list[str] | None = None) -> None:
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(CASES), help="run only these cases")
    args = parser.parse_args(argv)
    if not torch.cuda.is_available() or not str(args.device).startswith("cuda"):
        sys.exit(f"error: {NO_CUDA_MESSAGE}")
    setup(args)
    device = torch.device(args.device)
    steps = args.reps or (3 if args.quick else 10)
    print(machine_line())
    print(f"{IMAGES_PER_GPU} images/GPU, {NUM_GT} gt instances each, {steps} timed steps after 2 warm-up steps")
    result = {}
    parity = 0.0
    for case in args.only or CASES:
        config, size = CASES[case]
        diff = backbone_parity(config, device)
        parity = max(parity, diff)
        print(f"{case}: backbone CUDA vs CPU max |diff| {diff:.2e} (rtol {PARITY_RTOL}, atol {PARITY_ATOL}): ok",
              flush=True)
    print(f"{'case':<26}{'input':>11} {'variant':<10}{'s/iter':>8}{'peak GB':>9}   reference")
    for case in args.only or CASES:
        config, size = CASES[case]
        refs = "; ".join(f"{'' if s is None else f'{s} s/iter, '}{gb} GB ({src})" for s, gb, src in REFERENCE[case])
        for variant, dtype, checkpointing in VARIANTS:
            seconds, peak_gb = measure(config, size, dtype, checkpointing, steps, device)
            print(f"{case:<26}{f'{size[0]}x{size[1]}':>11} {variant:<10}{seconds:8.3f}{peak_gb:9.2f}   {refs}",
                  flush=True)
            key = f"{case}_{variant.replace('+', '_')}"
            result[f"{key}_s_per_iter"] = seconds
            result[f"{key}_peak_gb"] = peak_gb
    print_result(**result, parity_max_abs_diff=f"{parity:.1e}")


if __name__ == "__main__":
    main()
