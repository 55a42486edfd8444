"""Helpers for the backbone golden cases (tests/data/golden/<family>/, see tests/data/golden/README.md).

A plain module (not collected by pytest) imported by the backbone test files: building a model from a golden case,
parity and load-report assertions, log capture, and the activation-checkpointing equivalence check.
"""
from __future__ import annotations

import contextlib
import logging
import re
from typing import Callable, Sequence

import pytest
import torch
from torch import nn

from mmdet.engine import load_checkpoint
from mmdet.registry import BACKBONES


def assert_outputs_close(outs: Sequence[torch.Tensor], refs: Sequence[torch.Tensor], tol: dict) -> None:
    """Every output map equals its reference at the golden tolerance (``tol``: ``atol`` / ``rtol``)."""
    assert len(outs) == len(refs)
    for o, r in zip(outs, refs):
        torch.testing.assert_close(o, r, atol=tol["atol"], rtol=tol["rtol"])


@contextlib.contextmanager
def captured_messages(logger: logging.Logger):
    """Collect the messages ``logger`` emits inside the block."""
    records: list[str] = []

    class _ListHandler(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    handler, old_level = _ListHandler(level=logging.DEBUG), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


def model_from_case(model_cls: type, case: dict) -> nn.Module:
    """``model_cls(**case['constructor_kwargs'])`` with the case's state_dict loaded strictly, in eval mode."""
    model = model_cls(**case["constructor_kwargs"])
    model.load_state_dict(case["state_dict"], strict=True)
    return model.eval()


def assert_registered_with_official_keys(model_cls: type, case: dict) -> None:
    """The class is registered under its name and its state_dict keys, order and shapes equal the official ones."""
    assert BACKBONES.get(model_cls.__name__) is model_cls
    model = model_cls(**case["constructor_kwargs"])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    ref = {k: tuple(v.shape) for k, v in case["state_dict"].items()}
    assert list(ours) == list(ref) and ours == ref


def assert_eval_parity(model: nn.Module, case: dict) -> None:
    """Every golden input gives the golden outputs at the case's tolerance."""
    with torch.no_grad():
        for x, refs in zip(case["inputs"], case["outputs"]):
            assert_outputs_close(model(x.float()), refs, case["tolerance"])


def load_with_report(model: nn.Module, path: str, route: str, logger_name: str) -> str:
    """Load ``path`` into ``model`` by ``route`` (``'load_checkpoint'`` or ``'init_weights'``); the logged text."""
    if route == "load_checkpoint":
        logger = logging.getLogger(logger_name)
        with captured_messages(logger) as messages:
            load_checkpoint(model, path, logger=logger)
    else:
        with captured_messages(logging.getLogger("mmdet")) as messages:
            model.init_weights(pretrained=path)
    model.eval()
    return "\n".join(messages)


def assert_load_matches_official(model: nn.Module, report: str, case: dict) -> None:
    """The official loader's unexpected keys are reported by name, its missing keys as missing, nothing else is
    unexpected or mismatched, and the loaded state_dict has the case's fingerprint (sum, abs-sum per key)."""
    for key in case["unexpected_keys"]:
        assert key in report
    for key in case["missing_keys"]:
        assert re.search(rf"missing in checkpoint\s+{re.escape(key)}\b", report), key
    assert "unexpected in checkpoint" not in report and "shape mismatch" not in report
    sd = model.state_dict()
    for key, (total, total_abs) in case["state_dict_after_load_fingerprint"].items():
        assert sd[key].double().sum().item() == pytest.approx(total, rel=1e-5, abs=1e-3), key
        assert sd[key].double().abs().sum().item() == pytest.approx(total_abs, rel=1e-5, abs=1e-3), key


def assert_checkpointing_is_exact(make_model: Callable[..., nn.Module], input_shape: tuple, out_tol: tuple,
                                  input_grad_tol: tuple, param_grad_tol: tuple) -> None:
    """``make_model(use_checkpoint=...)`` with and without activation checkpointing (same weights, train mode,
    seeded random input of ``input_shape``) give equal outputs, input gradients and parameter gradients; each
    ``*_tol`` is ``(atol, rtol)``."""
    torch.manual_seed(0)
    plain = make_model(use_checkpoint=False).train()
    ckpt = make_model(use_checkpoint=True).train()
    ckpt.load_state_dict(plain.state_dict())
    x = torch.randn(input_shape)
    results = []
    for model in (plain, ckpt):
        xi = x.clone().requires_grad_()
        outs = model(xi)
        sum(o.square().mean() for o in outs).backward()
        results.append((outs, xi.grad, {n: p.grad for n, p in model.named_parameters()}))
    (o1, g1, p1), (o2, g2, p2) = results
    for a, b in zip(o1, o2):
        torch.testing.assert_close(a, b, atol=out_tol[0], rtol=out_tol[1])
    torch.testing.assert_close(g1, g2, atol=input_grad_tol[0], rtol=input_grad_tol[1])
    for name in p1:
        torch.testing.assert_close(p1[name], p2[name], atol=param_grad_tol[0], rtol=param_grad_tol[1], msg=name)
