"""The ``mmdet`` logger: console on every rank (warnings and up off rank 0), a file on rank 0."""
from __future__ import annotations

import logging
import os
import sys

_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"


def _rank() -> int:
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank()
    return int(os.environ.get("RANK", 0))


def get_root_logger(log_file: str | None = None, log_level: int | str = logging.INFO) -> logging.Logger:
    """Return the ``mmdet`` logger; the first call with ``log_file`` adds a file handler (rank 0 only)."""
    logger = logging.getLogger("mmdet")
    if isinstance(log_level, str):
        log_level = logging.getLevelName(log_level.upper())
    rank = _rank()
    if not getattr(logger, "_mmdet_configured", False):
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(logging.Formatter(_FORMAT))
        logger.addHandler(handler)
        logger.propagate = False
        logger._mmdet_configured = True
    if log_file is not None and rank == 0:
        path = os.path.abspath(log_file)
        if not any(isinstance(h, logging.FileHandler) and h.baseFilename == path for h in logger.handlers):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fh = logging.FileHandler(path, mode="a")
            fh.setFormatter(logging.Formatter(_FORMAT))
            logger.addHandler(fh)
    logger.setLevel(log_level if rank == 0 else logging.ERROR)
    return logger


def print_log(msg: str, logger: logging.Logger | str | None = None, level: int = logging.INFO) -> None:
    """Log ``msg`` to ``logger`` (a Logger, a logger name, ``'silent'``) or print it when None."""
    if logger is None:
        print(msg)
    elif logger == "silent":
        return
    elif isinstance(logger, logging.Logger):
        logger.log(level, msg)
    else:
        logging.getLogger(logger).log(level, msg)
