"""Convert a timm / MAE / BEiT-style ViT checkpoint into the layout of the ViTDet ``ViT`` backbone.

Example::

    python tools/model_converters/vit2mmdet.py mae_pretrain_vit_base.pth vit_b_1024.pth --img-size 1024

What happens (the same conversion the ``ViT`` loader applies, done once, offline):
the weights are taken from ``state_dict_ema`` > ``state_dict`` > ``model`` (``--no-ema`` skips the EMA
copy); ``module.`` prefixes are removed; ``q_bias``/``v_bias`` pairs are merged into ``qkv.bias``
(k bias 0); ``pos_embed`` loses its cls row and is resized bicubically to the detection grid
``img_size / patch_size``; classification / pre-training-only entries (``cls_token``, ``dist_token``,
``mask_token``, ``head.*``, ``fc_norm.*``, ``decoder_*``, relative-position bias tables) are dropped.
The result is written as ``{'meta': ..., 'state_dict': ...}`` and loads with
``mmdet.engine.load_checkpoint(vit_backbone, dst)`` or ``--cfg-options model.pretrained=dst``.
"""
from __future__ import annotations

import argparse
import logging
import re
import sys
from collections import OrderedDict

from mmdet.engine.checkpoint import atomic_torch_save, extract_state_dict, safe_torch_load
from mmdet.models.backbones.vitdet import convert_vit_state_dict

DROPPED = re.compile(r"^(cls_token|dist_token|mask_token|head\.|head_dist\.|fc_norm\.|decoder_)"
                     r"|\.(q_bias|v_bias)$")


def convert(checkpoint, img_size: int = 1024, patch_size: int = 16, use_ema: bool = True,
            logger: logging.Logger | None = None) -> tuple["OrderedDict", list[str]]:
    """Return ``(state_dict in ViT keys, dropped key names)``."""
    logger = logger or logging.getLogger("mmdet")
    if img_size % patch_size:
        raise ValueError(f"--img-size {img_size} is not a multiple of --patch-size {patch_size}")
    grid = (img_size // patch_size, img_size // patch_size)
    state_dict = convert_vit_state_dict(extract_state_dict(checkpoint, prefer_ema=use_ema), grid, logger=logger)
    dropped = [k for k in state_dict if DROPPED.search(k)]
    kept = OrderedDict((k, v.contiguous()) for k, v in state_dict.items() if not DROPPED.search(k))
    if "pos_embed" in kept and kept["pos_embed"].shape[1] != grid[0] * grid[1]:
        raise ValueError(f"pos_embed of shape {tuple(kept['pos_embed'].shape)} could not be mapped to the "
                         f"{grid[0]}x{grid[1]} grid; check --img-size / --patch-size")
    return kept, dropped


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Convert a timm / MAE ViT checkpoint to the mmdet ViTDet ViT layout")
    parser.add_argument("src", help="source checkpoint (timm / MAE / BEiT-style ViT)")
    parser.add_argument("dst", help="output checkpoint path")
    parser.add_argument("--img-size", type=int, default=1024, help="detection input size (default 1024)")
    parser.add_argument("--patch-size", type=int, default=16, help="patch size of the ViT (default 16)")
    parser.add_argument("--no-ema", action="store_true", help="ignore a state_dict_ema entry")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="allow full unpickling of a checkpoint you trust (default: weights only)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logger = logging.getLogger("mmdet")
    checkpoint = safe_torch_load(args.src, allow_unsafe=args.allow_unsafe or None)
    state_dict, dropped = convert(checkpoint, args.img_size, args.patch_size, not args.no_ema, logger)
    meta = dict(converted_from=args.src, img_size=args.img_size, patch_size=args.patch_size)
    atomic_torch_save({"meta": meta, "state_dict": state_dict}, args.dst)
    print(f"wrote {len(state_dict)} tensors to {args.dst}; dropped {len(dropped)}: {', '.join(dropped) or '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
