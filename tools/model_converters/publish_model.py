"""Prepare a trained checkpoint for release (mmdetection's ``tools/model_converters/publish_model.py``).

Example::

    python tools/model_converters/publish_model.py work_dirs/x/latest.pth vitdet_vit_b.pth
    -> vitdet_vit_b-1a2b3c4d.pth   (first 8 hex digits of the file's sha256)

The optimizer state is removed (weights, ``meta`` and other entries stay), the file is written
atomically, hashed, and renamed to ``<out_file without .pth>-<sha256[:8]>.pth``.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import sys

from mmdet.engine.checkpoint import atomic_torch_save, safe_torch_load


def sha256_of(path: str, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def publish(in_file: str, out_file: str, allow_unsafe: bool | None = None) -> str:
    """Write the slimmed checkpoint and return its final path (with the hash suffix)."""
    checkpoint = safe_torch_load(in_file, allow_unsafe=allow_unsafe)
    if not isinstance(checkpoint, dict):
        raise RuntimeError(f"{in_file} holds a {type(checkpoint).__name__}, expected a checkpoint dict")
    checkpoint.pop("optimizer", None)
    atomic_torch_save(checkpoint, out_file)
    stem = out_file[:-len(".pth")] if out_file.endswith(".pth") else out_file
    final_file = f"{stem}-{sha256_of(out_file)[:8]}.pth"
    os.replace(out_file, final_file)
    return final_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description="Strip the optimizer from a checkpoint and add its sha256 prefix "
                                                 "to the file name")
    parser.add_argument("in_file", help="input checkpoint")
    parser.add_argument("out_file", help="output checkpoint (the hash is inserted before .pth)")
    parser.add_argument("--allow-unsafe", action="store_true",
                        help="allow full unpickling of a checkpoint you trust (default: weights only)")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    print(publish(args.in_file, args.out_file, args.allow_unsafe or None))
    return 0


if __name__ == "__main__":
    sys.exit(main())
