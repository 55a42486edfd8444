"""Backbones of the seed configs: forward and forward+backward time and peak memory.

Each backbone is built from its seed config's ``model.backbone`` (random weights, ``init_cfg``/``pretrained``
dropped), lazily: one whose type is not registered yet is skipped with the reason printed. Inputs: 800x1216
(ViTDet backbones: 1024x1024), batch 1. Forward runs in eval mode under ``no_grad``; forward+backward in train mode
(``sum`` of all outputs as the loss). Variants: fp32; on CUDA also bf16 autocast; with ``--checkpointing`` (always
on CUDA) also activation checkpointing (``use_checkpoint`` / ResNet ``with_cp``) for forward+backward.
ResNet-50 is also compared with torchvision's ResNet-50 trunk (frozen BN, frozen stem and layer1, as ours):
``resnet50_fwd_ratio`` / ``resnet50_fwdbwd_ratio`` = torchvision time / our time.

    python benchmarks/backbones.py --quick     # 256x384 (ViTDet 256x256), 1 rep, fp32 (< 2 min on 2 CPU cores)
    python benchmarks/backbones.py             # full sizes, 3 reps
    python benchmarks/backbones.py --only vit_b swin_t --checkpointing

Last line: ``RESULT fwd_<name>=seconds ... fwdbwd_<name>=seconds ... resnet50_fwd_ratio=...``.
"""
from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.common import base_parser, machine_line, peak_memory_bytes, print_result, setup, time_interleaved

ROOT = Path(__file__).resolve().parents[1]
#: name -> (seed config, full input size H, W)
BACKBONES = {
    "resnet50": ("configs/mask_rcnn/mask_rcnn_r50_fpn_1x_coco.py", (800, 1216)),
    "vitaev2_s": ("configs/vitaev2/mask_rcnn_vitaev2_s_mstrain_480-800_adamw_1x_coco.py", (800, 1216)),
    "vitaev2_vsa_s": ("configs/vitaev2_vsa/mask_rcnn_vitaev2_vsa_s_mstrain_480-800_adamw_1x_coco.py", (800, 1216)),
    "vit_b": ("configs/vitdet/ViTDet-ViT-Base-100e.py", (1024, 1024)),
    "vitae_b": ("configs/vitdet/ViTDet-ViTAE-Base-100e.py", (1024, 1024)),
    "vitae_s": ("configs/vitdet/ViTDet-ViTAE-Small-100e.py", (1024, 1024)),
    "visformerv2_s": ("configs/swin_visformer/mask_rcnn_swin_visformer_small_v2_adamw_1x_coco.py", (800, 1216)),
    "swin_t": ("configs/swin/mask_rcnn_swin_tiny_patch4_window7_mstrain_480-800_adamw_1x_coco.py", (800, 1216)),
}
QUICK_SIZES = {(800, 1216): (256, 384), (1024, 1024): (256, 256)}


def backbone_cfg(config: str, checkpointing: bool):
    """The config's ``model.backbone`` without pretrained weights, with activation checkpointing on or off."""
    from mmdet.engine import Config
    cfg = Config.fromfile(str(ROOT / config)).model.backbone
    cfg.pop("init_cfg", None)
    cfg.pop("pretrained", None)
    cfg["with_cp" if cfg["type"] == "ResNet" else "use_checkpoint"] = checkpointing
    return cfg


def build(config: str, checkpointing: bool, device):
    """The backbone, or the reason it cannot be built (type not registered yet)."""
    from mmdet.models import build_backbone  # importing mmdet.models registers every backbone
    cfg = backbone_cfg(config, checkpointing)
    try:
        return build_backbone(cfg).to(device), None
    except KeyError as e:
        return None, f"{cfg['type']} not available: {e}"


def torchvision_resnet50_trunk(device):
    """torchvision ResNet-50 up to layer4 returning the 4 stage outputs, frozen BN, stem and layer1 frozen."""
    from torchvision.models import resnet50
    from torchvision.ops import FrozenBatchNorm2d
    net = resnet50(weights=None, norm_layer=FrozenBatchNorm2d)
    for module in (net.conv1, net.layer1):
        module.requires_grad_(False)

    class Trunk(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = net

        def forward(self, x):
            n = self.net
            x = n.maxpool(n.relu(n.bn1(n.conv1(x))))
            outs = []
            for layer in (n.layer1, n.layer2, n.layer3, n.layer4):
                x = layer(x)
                outs.append(x)
            return tuple(outs)

    return Trunk().to(device)


def step_fns(model, x, dtype, device):
    """(forward, forward+backward) zero-argument callables for ``model`` on ``x`` (autocast ``dtype`` or fp32)."""
    def autocast():
        return torch.autocast(device_type=torch.device(device).type, dtype=dtype, enabled=dtype is not None)

    def forward():
        model.eval()
        with torch.no_grad(), autocast():
            model(x)

    def forward_backward():
        model.train()
        with autocast():
            outs = model(x)
        sum(o.float().sum() for o in outs).backward()
        model.zero_grad(set_to_none=True)

    return forward, forward_backward


def main():
    parser = base_parser(__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(BACKBONES), help="benchmark only these backbones")
    parser.add_argument("--checkpointing", action="store_true",
                        help="also forward+backward with activation checkpointing (always on CUDA)")
    args = parser.parse_args()
    setup(args)
    device = torch.device(args.device)
    reps = args.reps or (1 if args.quick else 3)
    on_cuda = device.type == "cuda"
    variants = [("fp32", None, False)]
    if on_cuda:
        variants.append(("bf16", torch.bfloat16, False))
    if on_cuda or args.checkpointing:
        variants += [("fp32+ckpt", None, True)] + ([("bf16+ckpt", torch.bfloat16, True)] if on_cuda else [])
    print(machine_line())
    print(f"{reps} reps, batch 1, device {device}; times in ms (medians), peak memory in MiB")
    print(f"{'backbone':<15}{'input':>11} {'variant':<10}{'fwd':>10}{'fwd+bwd':>10}{'peak fwd':>10}{'peak f+b':>10}")
    result = {}
    for name in args.only or BACKBONES:
        config, full_size = BACKBONES[name]
        h, w = QUICK_SIZES[full_size] if args.quick else full_size
        x = torch.randn(1, 3, h, w, device=device)
        for variant, dtype, checkpointing in variants:
            model, reason = build(config, checkpointing, device)
            if model is None:
                print(f"{name:<15} skipped: {reason}", flush=True)
                break
            fwd, fwd_bwd = step_fns(model, x, dtype, device)
            candidates = {"fwd_bwd": fwd_bwd} if checkpointing else {"fwd": fwd, "fwd_bwd": fwd_bwd}
            times = time_interleaved(candidates, reps=reps, device=device)
            peaks = {k: peak_memory_bytes(fn, device) for k, fn in candidates.items()}
            fwd_ms = f"{times['fwd'] * 1e3:10.1f}" if "fwd" in times else f"{'-':>10}"
            fwd_mem = f"{peaks['fwd'] / 2**20:10.1f}" if "fwd" in peaks else f"{'-':>10}"
            print(f"{name:<15}{f'{h}x{w}':>11} {variant:<10}{fwd_ms}{times['fwd_bwd'] * 1e3:10.1f}"
                  f"{fwd_mem}{peaks['fwd_bwd'] / 2**20:10.1f}", flush=True)
            suffix = "" if variant == "fp32" else "_" + variant.replace("+", "_")
            for key, seconds in times.items():
                result[f"{key.replace('_', '')}_{name}{suffix}"] = seconds
            for key, peak in peaks.items():
                result[f"peakmib_{key.replace('_', '')}_{name}{suffix}"] = round(peak / 2**20, 1)
            if name == "resnet50" and variant == "fp32":
                ref_fwd, ref_fwd_bwd = step_fns(torchvision_resnet50_trunk(device), x, None, device)
                ref = time_interleaved({"fwd": ref_fwd, "fwd_bwd": ref_fwd_bwd}, reps=reps, device=device)
                print(f"{'  torchvision':<15}{f'{h}x{w}':>11} {'fp32':<10}{ref['fwd'] * 1e3:10.1f}"
                      f"{ref['fwd_bwd'] * 1e3:10.1f}", flush=True)
                result["resnet50_fwd_ratio"] = ref["fwd"] / times["fwd"]
                result["resnet50_fwdbwd_ratio"] = ref["fwd_bwd"] / times["fwd_bwd"]
            del model
    print_result(**result)


if __name__ == "__main__":
    main()
