"""Print the fully merged config (``_base_`` chain and ``--cfg-options`` applied) as Python.

Example::

    python tools/misc/print_config.py configs/vitaev2/mask_rcnn_vitaev2_s_mstrain_480-800_adamw_1x_coco.py \\
        --cfg-options optimizer.lr=2e-4 data.samples_per_gpu=4

A ``--cfg-options`` key that does not exist in the config is created (as in mmcv) and
reported on one warning line, so a typo such as ``model.backbone.use_chekpoint`` shows.
"""
from __future__ import annotations

import argparse
import warnings

from mmdet.engine.config import DictAction
from mmdet.utils.cli import load_config


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Print the whole config")
    parser.add_argument("config", help="config file path")
    parser.add_argument(
        "--cfg-options", nargs="+", action=DictAction,
        help="override settings in the used config, the key-value pair in xxx=yyy format will be merged into "
             "the config file. If the value to be overwritten is a list, it should be like key=\"[a,b]\" or "
             "key=a,b. It also allows nested list/tuple values, e.g. key=\"[(a,b),(c,d)]\". Note that the "
             "quotation marks are necessary and that no white space is allowed.")
    parser.add_argument(
        "--options", nargs="+", action=DictAction,
        help="deprecated alias of --cfg-options")
    args = parser.parse_args(argv)
    if args.options and args.cfg_options:
        raise ValueError("--options and --cfg-options cannot be both specified, --options is deprecated in "
                         "favor of --cfg-options")
    if args.options:
        warnings.warn("--options is deprecated in favor of --cfg-options")
        args.cfg_options = args.options
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    print(f"Config:\n{cfg.pretty_text}")


if __name__ == "__main__":
    main()
