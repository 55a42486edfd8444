"""Two CPU processes (gloo) through tools/dist_train.sh -> torchrun -> tools/train.py --launcher pytorch:
DDP training with the distributed group sampler, DistEvalHook gathering results across ranks,
identical parameters on both ranks afterwards, and one log written (by rank 0)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import torch

from mmdet.engine.dist import get_dist_info
from mmdet.engine.hooks import Hook
from mmdet.engine.runner import unwrap_model
from mmdet.registry import HOOKS
from test_tools_cli import REPO, tool_env, write_config


@HOOKS.register_module(force=True)
class DumpParamsHook(Hook):
    """Every rank writes its parameters to ``<work_dir>/params_rank<r>.pt`` when the run ends."""

    def after_run(self, runner):
        params = {k: v.detach().cpu() for k, v in unwrap_model(runner.model).named_parameters()}
        torch.save(dict(params=params, world_size=get_dist_info()[1], device=str(runner.device)),
                   os.path.join(runner.work_dir, f"params_rank{get_dist_info()[0]}.pt"))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_gloo_training_keeps_ranks_identical(tmp_path):
    config = write_config(tmp_path / "toy_ddp.py", max_epochs=2, imports=("test_runner", "test_ddp"),
                          extra_hooks=[dict(type="DumpParamsHook")])
    work = tmp_path / "work"
    env = tool_env(PORT=str(free_port()), PYTHON=sys.executable)
    proc = subprocess.run(["bash", str(REPO / "tools" / "dist_train.sh"), str(config), "2", "--work-dir", str(work)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    ranks = [torch.load(work / f"params_rank{r}.pt", weights_only=True) for r in (0, 1)]
    assert ranks[0]["world_size"] == ranks[1]["world_size"] == 2
    for name, value in ranks[0]["params"].items():
        assert torch.equal(value, ranks[1]["params"][name]), name
    logs = list(work.glob("*.log.json"))
    assert len(logs) == 1 and len(list(work.glob("*.log"))) == 1
    records = [json.loads(line) for line in logs[0].read_text().splitlines()]
    # 8 images / (2 ranks x 2 per GPU) = 2 iterations per epoch, one train report per epoch, one val per epoch
    assert [(r["mode"], r["epoch"], r["iter"]) for r in records[1:]] == [
        ("train", 1, 2), ("val", 1, 2), ("train", 2, 2), ("val", 2, 2)]
    assert "gpu_ids = range(0, 2)" in records[0]["config"] and records[0]["seed"] == 0
    ckpt = torch.load(work / "latest.pth", weights_only=True)
    assert (ckpt["meta"]["epoch"], ckpt["meta"]["iter"]) == (2, 4) and len(ckpt["rng_state"]) == 2


def test_launcher_without_torchrun_env_is_a_clear_error(monkeypatch):
    import pytest
    from mmdet.engine.dist import init_dist
    for name in ("RANK", "WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(RuntimeError, match="--launcher pytorch needs the environment variable RANK; start the job "
                                           "with torchrun / tools/dist_train.sh"):
        init_dist("pytorch")


def test_syncbn_request_is_reported_when_it_cannot_apply():
    import logging
    from mmdet.apis.train import _prepare_model
    from mmdet.engine import Config
    from test_runner import ToyDetector
    records = []
    logger = logging.getLogger("mmdet_test.syncbn")
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    model, device = _prepare_model(ToyDetector(), Config(dict(syncBN=True, gpu_ids=[0])), distributed=False,
                                   logger=logger)
    assert device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert isinstance(model.backbone[1], torch.nn.BatchNorm2d)
    assert "syncBN=True is ignored: SyncBatchNorm needs distributed training on GPUs" in records[0].getMessage()
