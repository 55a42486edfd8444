"""Checkpoint layout, atomic writes, latest.pth fallbacks, full-disk / unwritable errors and load faults."""
from __future__ import annotations

import errno
import logging
import os
import re

import pytest
import torch

import mmdet.engine.checkpoint as ckpt_mod
import mmdet.engine.runner as runner_mod
from mmdet.engine.checkpoint import load_checkpoint
from test_runner import ToyDataset, ToyDetector, make_runner, toy_loader


def trained_runner(work_dir, max_epochs=1, **kwargs):
    runner = make_runner(work_dir, max_epochs=max_epochs, checkpoint_config=dict(interval=1, meta=dict(
        CLASSES=ToyDataset.CLASSES, mmdet_version="2.30.0abcdef0")),
        meta=dict(config="model = dict(type='ToyDetector')\ngpu_ids = range(0, 1)", seed=0, exp_name="toy.py"),
        **kwargs)
    runner.run([toy_loader(ToyDataset(4))], [("train", 1)])
    return runner


def test_checkpoint_layout_loads_with_plain_weights_only(tmp_path):
    runner = trained_runner(tmp_path, max_epochs=2)
    ckpt = torch.load(tmp_path / "epoch_2.pth", weights_only=True)  # no allow-list needed
    assert set(ckpt) == {"meta", "state_dict", "optimizer", "rng_state"}
    meta = ckpt["meta"]
    assert (meta["epoch"], meta["iter"]) == (2, 4)
    assert meta["CLASSES"] == ("dark", "bright") and meta["mmdet_version"] == "2.30.0abcdef0"
    assert meta["config"].startswith("model = dict") and meta["exp_name"] == "toy.py" and "time" in meta
    assert set(ckpt["state_dict"]) == set(runner.model.state_dict())
    assert all(not v.requires_grad and v.device.type == "cpu" for v in ckpt["state_dict"].values())
    assert set(ckpt["optimizer"]) == {"state", "param_groups"}
    assert os.path.islink(tmp_path / "latest.pth") and os.readlink(tmp_path / "latest.pth") == "epoch_2.pth"
    assert not list(tmp_path.glob(".tmp_*"))


def test_latest_falls_back_to_hard_link_then_copy(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EPERM, "links not supported")
    monkeypatch.setattr(runner_mod.os, "symlink", refuse)
    monkeypatch.setattr(runner_mod.os, "link", refuse)
    trained_runner(tmp_path, max_epochs=2)
    latest = tmp_path / "latest.pth"
    assert latest.is_file() and not latest.is_symlink()
    assert latest.read_bytes() == (tmp_path / "epoch_2.pth").read_bytes()


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EACCES])
def test_full_disk_or_unwritable_dir_reported_and_previous_checkpoint_survives(tmp_path, monkeypatch, err):
    runner = trained_runner(tmp_path, max_epochs=1)
    before = (tmp_path / "epoch_1.pth").read_bytes()
    real_save = torch.save

    def failing_save(obj, f, *args, **kwargs):
        real_save(obj, f, *args, **kwargs)  # partial data reaches the temp file, then the disk "fills up"
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(ckpt_mod.torch, "save", failing_save)
    runner._max_epochs = 2
    with pytest.raises(OSError, match=rf"cannot write checkpoint .*epoch_2\.pth: {os.strerror(err)}; the previous "
                                      r"checkpoint is unchanged"):
        runner.run([toy_loader(ToyDataset(4))], [("train", 1)])
    assert not (tmp_path / "epoch_2.pth").exists() and not list(tmp_path.glob(".tmp_*"))
    assert (tmp_path / "epoch_1.pth").read_bytes() == before
    assert torch.load(tmp_path / "latest.pth", weights_only=True)["meta"]["epoch"] == 1


def test_load_faults_reported_as_table_and_strict_errors(tmp_path):
    trained_runner(tmp_path)
    other = ToyDetector(num_classes=3)
    other.extra = torch.nn.Linear(2, 2)
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logger = logging.getLogger("mmdet_test.ckpt_faults")
    logger.addHandler(handler)
    load_checkpoint(other, str(tmp_path / "latest.pth"), logger=logger)
    table = "\n".join(r.getMessage() for r in records)
    assert re.search(r"missing in checkpoint\s+extra\.weight", table)
    assert re.search(r"shape mismatch\s+bbox_head\.fc_cls\.weight\s+checkpoint \[2, 8\] vs model \[3, 8\]", table)
    with pytest.raises(RuntimeError, match=r"strict checkpoint load into ToyDetector failed:\ncheckpoint keys not loaded"):
        load_checkpoint(other, str(tmp_path / "latest.pth"), strict=True, logger=logger)


class Payload:
    """An arbitrary pickled class: loading it must be refused unless the user opts in."""


def test_non_allow_listed_object_refused_with_name_and_opt_in(tmp_path, monkeypatch):
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "meta": {"obj": Payload()}}, path)
    monkeypatch.delenv("MMDET_ALLOW_UNSAFE_CHECKPOINTS", raising=False)
    with pytest.raises(RuntimeError, match=r"refusing to unpickle .*Payload.* MMDET_ALLOW_UNSAFE_CHECKPOINTS=1"):
        load_checkpoint(ToyDetector(), str(path))
    monkeypatch.setenv("MMDET_ALLOW_UNSAFE_CHECKPOINTS", "1")
    assert isinstance(load_checkpoint(ToyDetector(), str(path))["meta"]["obj"], Payload)


def test_resume_from_weights_only_checkpoint_is_a_clear_error(tmp_path):
    torch.save({"state_dict": ToyDetector().state_dict()}, tmp_path / "weights.pth")
    runner = make_runner(tmp_path)
    with pytest.raises(KeyError, match="not a training checkpoint that can be resumed; use load_from="):
        runner.resume(str(tmp_path / "weights.pth"))
    with pytest.raises(FileNotFoundError, match="checkpoint file not found: .*missing.pth"):
        runner.resume(str(tmp_path / "missing.pth"))
