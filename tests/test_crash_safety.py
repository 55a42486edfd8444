"""Crash safety with real processes: SIGKILL during an iteration, during evaluation and in the middle of a
checkpoint write. Each time the last checkpoint stays loadable, ``--auto-resume`` finishes the run, and the
final weights equal an uninterrupted run's (CPU, --deterministic)."""
from __future__ import annotations

import os
import signal
import subprocess

import torch

from mmdet.engine.hooks import EvalHook, Hook
from mmdet.registry import HOOKS
from test_tools_cli import REPO, tool_cmd, tool_env, write_config

KILL_EPOCH = 2  # 1-based epoch in which the process kills itself


@HOOKS.register_module(force=True)
class SelfKillHook(Hook):
    """SIGKILLs its own process at ``stage`` of epoch ``KILL_EPOCH``: 'iter' (after the 3rd iteration),
    'eval' (inside dataset.evaluate), 'ckpt' (after half of epoch_N.pth's temp file is written)."""

    def __init__(self, stage: str):
        self.stage = stage

    @staticmethod
    def _die():
        os.kill(os.getpid(), signal.SIGKILL)

    def before_run(self, runner):
        in_kill_epoch = lambda: runner.epoch + 1 == KILL_EPOCH  # noqa: E731
        if self.stage == "eval":
            dataset = next(h for h in runner.hooks if isinstance(h, EvalHook)).dataloader.dataset
            evaluate = dataset.evaluate
            dataset.evaluate = lambda *a, **k: self._die() if in_kill_epoch() else evaluate(*a, **k)
        elif self.stage == "ckpt":
            import mmdet.engine.checkpoint as ckpt_mod
            real_save = torch.save

            def half_write_then_die(obj, f, *args, **kwargs):
                real_save(obj, f, *args, **kwargs)
                if in_kill_epoch():
                    f.flush()
                    f.truncate(f.tell() // 2)
                    f.flush()
                    os.fsync(f.fileno())
                    self._die()

            ckpt_mod.torch.save = half_write_then_die

    def after_train_iter(self, runner):
        if self.stage == "iter" and runner.epoch + 1 == KILL_EPOCH and runner.inner_iter == 2:
            self._die()


def start_train(config, work_dir, *extra):
    cmd = tool_cmd("train.py", config, "--work-dir", work_dir, "--seed", "0", "--deterministic", *extra)
    return subprocess.Popen(cmd, cwd=REPO, env=tool_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def finish(proc, expect_rc=0) -> str:
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == expect_rc, f"rc {proc.returncode}, expected {expect_rc}:\n{out[-4000:]}"
    return out


def test_sigkill_at_three_points_then_auto_resume_matches_uninterrupted(tmp_path):
    imports = ("test_runner", "test_crash_safety")
    reference_cfg = write_config(tmp_path / "toy.py", max_epochs=3, imports=imports)
    stages = ("iter", "eval", "ckpt")
    killed_cfgs = {s: write_config(tmp_path / f"toy_kill_{s}.py", max_epochs=3, imports=imports,
                                   extra_hooks=[dict(type="SelfKillHook", stage=s)]) for s in stages}
    reference = start_train(reference_cfg, tmp_path / "ref")
    killed = {s: start_train(killed_cfgs[s], tmp_path / s) for s in stages}
    finish(reference)
    for stage, proc in killed.items():
        finish(proc, expect_rc=-signal.SIGKILL)
        work = tmp_path / stage
        latest = torch.load(work / "latest.pth", weights_only=True)  # still loadable after the kill
        expected_epoch = {"iter": 1, "eval": 2, "ckpt": 1}[stage]
        assert latest["meta"]["epoch"] == expected_epoch, stage
        if stage == "ckpt":  # the cut-off write never replaced anything: only a temp file is left
            assert not (work / "epoch_2.pth").exists() and list(work.glob(".tmp_*.pth"))
    resumed = {s: start_train(reference_cfg, tmp_path / s, "--auto-resume") for s in stages}
    final = torch.load(tmp_path / "ref" / "epoch_3.pth", weights_only=True)["state_dict"]
    for stage, proc in resumed.items():
        out = finish(proc)
        assert f"auto-resume: from {tmp_path / stage / 'latest.pth'}" in out
        work = tmp_path / stage
        assert not list(work.glob(".tmp_*.pth"))
        got = torch.load(work / "epoch_3.pth", weights_only=True)["state_dict"]
        for key, value in final.items():
            assert torch.equal(value, got[key]), (stage, key)
