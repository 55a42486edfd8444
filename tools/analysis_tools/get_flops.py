"""Parameters and FLOPs of a detector, per module group (mmdetection 2.x ``tools/analysis_tools/get_flops.py``).

    python tools/analysis_tools/get_flops.py CONFIG [--shape H [W]] [--cfg-options k=v ...]

Counts with PyTorch's ``torch.utils.flop_counter.FlopCounterMode`` on ``model.forward_dummy(img)`` for one
random image ``(1, 3, H, W)`` (default 1280x800, as mmdetection). A multiply-add counts as 2 FLOPs (mmcv's
counter, whose figures mmdetection's model zoo quotes as "GFLOPs", counts it as 1: those are the GMACs column).
Ops without a FLOP formula (RoIAlign, NMS, elementwise ops, softmax) count 0. ``forward_dummy`` runs the RoI head
on 1000 random proposals (100 for the mask head), so the head figures do not depend on the image content.
"""
from __future__ import annotations

import argparse
import sys
from collections import OrderedDict
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

#: row name for FLOPs of ops that run outside every child module (glue code in ``forward_dummy``)
OUTSIDE = "(outside modules)"


@dataclass
class FlopsReport:
    """``groups``: child module name -> (flops, params), in child order; totals over the whole model."""
    input_shape: tuple[int, int, int]
    groups: "OrderedDict[str, tuple[int, int]]" = field(default_factory=OrderedDict)
    total_flops: int = 0
    total_params: int = 0

    def table(self) -> str:
        lines = [f"Input shape: {self.input_shape}",
                 f"{'module':<20}{'params (M)':>12}{'GFLOPs':>12}{'GMACs':>12}"]
        rows = list(self.groups.items()) + [("total", (self.total_flops, self.total_params))]
        for name, (flops, params) in rows:
            lines.append(f"{name:<20}{params / 1e6:>12.3f}{flops / 1e9:>12.3f}{flops / 2e9:>12.3f}")
        return "\n".join(lines)


def _track_group(module: nn.Module, name: str, counter: FlopCounterMode, flops: dict, handles: list) -> None:
    """Hooks on ``module`` and its descendants adding, to ``flops[name]``, the FLOPs counted between the first
    entry into any of them and the matching exit (nested calls are counted once)."""
    state = {"depth": 0, "start": 0}

    def enter(mod, args):
        if state["depth"] == 0:
            state["start"] = counter.get_total_flops()
        state["depth"] += 1

    def leave(mod, args, output):
        state["depth"] -= 1
        if state["depth"] == 0:
            flops[name] += counter.get_total_flops() - state["start"]

    for sub in module.modules():
        handles.append(sub.register_forward_pre_hook(enter))
        handles.append(sub.register_forward_hook(leave))


def compute_flops(model: nn.Module, input_shape: tuple[int, int, int]) -> FlopsReport:
    """FLOPs and parameters of ``model.forward_dummy`` on a random ``(1, *input_shape)`` image.

    Returns a report whose groups are the model's direct children (backbone, neck, rpn_head, roi_head, ...)
    plus :data:`OUTSIDE` when ops ran outside them; group FLOPs sum to the total.
    """
    if not callable(getattr(model, "forward_dummy", None)):
        raise NotImplementedError(f"FLOPs counting needs {type(model).__name__}.forward_dummy(img), which this "
                                  f"model does not have")
    param = next(model.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    img = torch.randn(1, *input_shape, device=device)
    counter = FlopCounterMode(display=False)
    flops: dict[str, int] = OrderedDict((name, 0) for name, _ in model.named_children())
    handles: list = []
    for name, child in model.named_children():
        _track_group(child, name, counter, flops, handles)
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), counter:
            model.forward_dummy(img)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    report = FlopsReport(tuple(input_shape), total_flops=counter.get_total_flops(),
                         total_params=sum(p.numel() for p in model.parameters()))
    for name, child in model.named_children():
        report.groups[name] = (flops[name], sum(p.numel() for p in child.parameters()))
    outside = report.total_flops - sum(flops.values())
    if outside:
        report.groups[OUTSIDE] = (outside, 0)
    return report


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from mmdet.engine import DictAction
    parser = argparse.ArgumentParser(description="Count the parameters and FLOPs of a detector")
    parser.add_argument("config", help="config file path")
    parser.add_argument("--shape", type=int, nargs="+", default=[1280, 800],
                        help="input image size: H [W] (one value: square; default 1280 800)")
    parser.add_argument("--cfg-options", nargs="+", action=DictAction,
                        help="override settings in the used config, KEY=VALUE pairs")
    args = parser.parse_args(argv)
    if len(args.shape) not in (1, 2) or min(args.shape) <= 0:
        parser.error(f"--shape takes H or H W (positive ints), got {args.shape}")
    return args


def main(argv: list[str] | None = None) -> FlopsReport:
    args = parse_args(argv)
    from mmdet.engine import Config
    from mmdet.models import build_detector
    h, w = (args.shape[0], args.shape[0]) if len(args.shape) == 1 else args.shape
    try:
        cfg = Config.fromfile(args.config)
    except FileNotFoundError as e:
        sys.exit(f"error: {e}")
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    cfg.model.pretrained = None
    if cfg.model.get("backbone") is not None and "init_cfg" in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    model = build_detector(cfg.model, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
    if torch.cuda.is_available():
        model.cuda()
    report = compute_flops(model, (3, h, w))
    print("=" * 56)
    print(report.table())
    print("=" * 56)
    print("FLOPs: multiply-add = 2 (GMACs = mmcv-style 'GFLOPs'); RoIAlign, NMS and elementwise ops are not "
          "counted.\nPlease be cautious if you use the results in papers: check that the counted ops are the "
          "ones you mean.")
    return report


if __name__ == "__main__":
    main()
