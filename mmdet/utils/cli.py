"""Command-line pieces shared by ``tools/`` scripts (mmdetection 2.x flags and messages)."""
from __future__ import annotations

import argparse
import os
import os.path as osp
import sys
import warnings
from typing import NoReturn

from mmdet.engine import Config

__all__ = ["fail", "load_config", "add_launcher_args", "parse_args_with_dict_options", "resolve_deprecated_alias",
           "prepare_test_config"]


def fail(message: str) -> NoReturn:
    """One clear line ``error: <message>`` on stderr and exit status 1."""
    print(f"error: {message}", file=sys.stderr)
    sys.exit(1)


def load_config(path: str, cfg_options: dict | None) -> Config:
    """``Config.fromfile(path)`` with the ``--cfg-options`` overrides merged; a missing file or an override that
    does not apply ends the program through :func:`fail`."""
    if not osp.isfile(path):
        fail(f"config file not found: {path}")
    cfg = Config.fromfile(path)
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except (KeyError, TypeError, ValueError, IndexError) as e:
            fail(f"bad --cfg-options {cfg_options}: {e}")
    return cfg


def prepare_test_config(cfg: Config) -> int:
    """Test-time edits of ``cfg``: no pretrained / ``init_cfg`` weights, no ``train_cfg``, ``data.test`` in
    test mode. Pops and returns ``data.test.samples_per_gpu`` (default 1); above 1 the test pipeline's
    ``ImageToTensor`` is replaced (batched images need ``DefaultFormatBundle``)."""
    cfg.model.pretrained = None
    if cfg.model.get("backbone") is not None and "init_cfg" in cfg.model.backbone:
        cfg.model.backbone.init_cfg = None
    cfg.model.train_cfg = None
    cfg.data.test.test_mode = True
    samples_per_gpu = cfg.data.test.pop("samples_per_gpu", 1)
    if samples_per_gpu > 1:
        from mmdet.datasets import replace_ImageToTensor
        cfg.data.test.pipeline = replace_ImageToTensor(cfg.data.test.pipeline)
    return samples_per_gpu


def add_launcher_args(parser: argparse.ArgumentParser) -> None:
    """``--launcher {none,pytorch,slurm,mpi}`` and ``--local_rank`` / ``--local-rank`` (set by older launchers)."""
    parser.add_argument("--launcher", choices=["none", "pytorch", "slurm", "mpi"], default="none", help="job launcher")
    parser.add_argument("--local_rank", "--local-rank", type=int, default=0)


def parse_args_with_dict_options(parser: argparse.ArgumentParser, argv: list[str] | None,
                                 bad_value_message: str) -> argparse.Namespace:
    """Parse ``argv``; a malformed ``KEY=VALUE`` (DictAction raises AssertionError, e.g. unbalanced brackets)
    becomes ``parser.error(f"{bad_value_message}: {reason}")``. Exports ``LOCAL_RANK`` from ``--local_rank``
    unless the launcher already set it."""
    try:
        args = parser.parse_args(argv)
    except AssertionError as e:
        parser.error(f"{bad_value_message}: {e}")
    if "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(args.local_rank)
    return args


def resolve_deprecated_alias(parser: argparse.ArgumentParser, args: argparse.Namespace, old: str,
                             new: str) -> None:
    """Fold the deprecated ``--<old>`` into ``--<new>`` (a warning); both given is a usage error.

    ``old`` / ``new`` are the flag names without dashes (``'options'``, ``'cfg-options'``).
    """
    old_attr, new_attr = old.replace("-", "_"), new.replace("-", "_")
    old_value, new_value = getattr(args, old_attr), getattr(args, new_attr)
    if old_value and new_value:
        parser.error(f"--{old} and --{new} cannot be both specified; --{old} is deprecated, use --{new}")
    if old_value:
        warnings.warn(f"--{old} is deprecated in favor of --{new}")
        setattr(args, new_attr, old_value)
