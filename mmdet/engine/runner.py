"""Runners: the training loop, hook dispatch, checkpoint save / resume (mmcv 1.x semantics, plain PyTorch).

:class:`EpochBasedRunner` runs ``workflow`` phases such as ``[('train', 1), ('val', 1)]``
until ``max_epochs``; :class:`IterBasedRunner` runs ``max_iters`` iterations over cycled
loaders. Per training iteration (the data <-> model <-> engine contract)::

    inputs = unwrap_batch(batch, device)                 # plain kwargs for the detector
    with torch.autocast(device, amp_dtype):              # only when an AMP optimizer hook is active
        losses = model(**inputs)                         # DDP-wrapped or not
    loss, log_vars = unwrap(model)._parse_losses(losses)
    # non-finite log_vars stop the run (NonFiniteLossError naming the iteration and loss term)
    # hooks: optimizer (backward / clip / step / GradScaler), checkpoint, eval, timer, loggers

Checkpoints follow mmcv 1.x's layout (``meta``, ``state_dict``, ``optimizer``) plus
``grad_scaler`` (fp16 loss-scaler state) and ``rng_state`` (per-rank python / numpy /
torch / CUDA generator states taken at the end of the epoch), and load with
``torch.load(weights_only=True)``. The runner restores those generator states at the
start of every training epoch, so what evaluation or a val phase draws in between does
not shift the training stream, and a run resumed from an epoch checkpoint reproduces the
uninterrupted run bit for bit on CPU in deterministic mode.
"""
from __future__ import annotations

import contextlib
import copy
import getpass
import math
import os
import random
import re
import shutil
import socket
import time
import warnings

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from mmdet.registry import HOOKS, RUNNERS

from . import hooks as _hooks  # noqa: F401 - registers the hook types
from .amp import autocast
from .checkpoint import load_checkpoint, save_checkpoint, unwrap_model
from .dist import get_dist_info, is_distributed
from .hooks.hook import Hook, get_priority
from .hooks.lr_updater import build_lr_hook
from .hooks.momentum_updater import build_momentum_hook
from .hooks.optimizer import OptimizerHook
from .log_buffer import LogBuffer
from .registry import build_from_cfg
from ..utils.logger import get_root_logger


class NonFiniteLossError(FloatingPointError):
    """A loss term became NaN / inf; training stops before the optimizer step applies it."""


def get_host_info() -> str:
    return f"{getpass.getuser()}@{socket.gethostname()}"


def get_rng_state() -> dict:
    """Python, numpy, torch and CUDA generator states as plain data (loads with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {"python": random.getstate(),
            "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    """Inverse of :func:`get_rng_state`."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    np_state = state["numpy"]
    np.random.set_state((np_state["kind"], np_state["keys"].numpy().astype(np.uint32), np_state["pos"],
                         np_state["has_gauss"], np_state["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _link_latest(path: str) -> None:
    """Point ``latest.pth`` next to ``path`` at it: a relative symlink, else a hard link, else a copy.

    The link is made under a temp name and renamed over ``latest.pth``, so a crash leaves the
    previous ``latest.pth`` intact.
    """
    dirname = os.path.dirname(path)
    tmp = os.path.join(dirname, f".tmp_latest_{os.getpid()}.pth")
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        try:
            os.symlink(os.path.basename(path), tmp)
        except OSError:
            try:
                os.link(path, tmp)
            except OSError:
                shutil.copyfile(path, tmp)
        os.replace(tmp, os.path.join(dirname, "latest.pth"))
    except OSError as e:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise OSError(e.errno, f"cannot update {os.path.join(dirname, 'latest.pth')}: {e.strerror}; "
                      f"{os.path.basename(path)} was written and the previous latest.pth is unchanged") from e


class BaseRunner:
    """State and machinery shared by the runners.

    Args:
        model: the detector (optionally DDP-wrapped); it must implement ``_parse_losses``.
        batch_processor: legacy ``fn(model, data, train_mode) -> dict(loss, log_vars, num_samples)``.
        optimizer: a ``torch.optim.Optimizer`` or a dict of them.
        work_dir: directory for checkpoints and logs (created).
        logger: defaults to the ``mmdet`` logger.
        meta: dict written into the JSON log header and every checkpoint's ``meta``.
        max_iters, max_epochs: training length (one of them).
    """

    by_epoch = True

    def __init__(self, model: nn.Module, batch_processor=None, optimizer=None, work_dir: str | None = None,
                 logger=None, meta: dict | None = None, max_iters: int | None = None,
                 max_epochs: int | None = None):
        if max_iters is not None and max_epochs is not None:
            raise ValueError("give the runner max_epochs or max_iters, not both")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"runner meta must be a dict, got {type(meta).__name__}")
        self.model = model
        self.batch_processor = batch_processor
        self.optimizer = optimizer
        self.work_dir = os.path.abspath(work_dir) if work_dir else None
        if self.work_dir:
            os.makedirs(self.work_dir, exist_ok=True)
        self.logger = logger or get_root_logger()
        self.meta = dict(meta or {})
        self.mode: str | None = None
        self.timestamp = time.strftime("%Y%m%d_%H%M%S", time.localtime())
        self.rank, self.world_size = get_dist_info()
        self.log_buffer = LogBuffer()
        self.outputs: dict = {}
        self.data_loader = None
        self.amp_dtype: torch.dtype | None = None
        self._hooks: list[Hook] = []
        self._epoch = 0
        self._iter = 0
        self._inner_iter = 0
        self._max_epochs = max_epochs
        self._max_iters = max_iters
        self._epoch_rng_states: list[dict] | None = None

    # --- read-only state ---------------------------------------------------------------------------
    model_name = property(lambda self: type(unwrap_model(self.model)).__name__)
    hooks = property(lambda self: self._hooks)
    epoch = property(lambda self: self._epoch)
    iter = property(lambda self: self._iter)
    inner_iter = property(lambda self: self._inner_iter)
    max_epochs = property(lambda self: self._max_epochs)
    max_iters = property(lambda self: self._max_iters)

    @property
    def device(self) -> torch.device:
        param = next(self.model.parameters(), None)
        return param.device if param is not None else torch.device("cpu")

    def _optimizers(self) -> dict:
        if isinstance(self.optimizer, dict):
            return self.optimizer
        if self.optimizer is None:
            raise RuntimeError("the runner has no optimizer; build one with mmdet.engine.optimizer.build_optimizer")
        return {None: self.optimizer}

    def current_lr(self):
        """lr of every param group (a dict of lists when the optimizer is a dict)."""
        lrs = {k: [g["lr"] for g in o.param_groups] for k, o in self._optimizers().items()}
        return lrs if isinstance(self.optimizer, dict) else lrs[None]

    def current_momentum(self):
        """momentum (or Adam's beta1) of every param group."""
        def momenta(opt):
            return [g["momentum"] if "momentum" in g else g.get("betas", (0.0,))[0] for g in opt.param_groups]
        values = {k: momenta(o) for k, o in self._optimizers().items()}
        return values if isinstance(self.optimizer, dict) else values[None]

    # --- hooks ---------------------------------------------------------------------------------
    def register_hook(self, hook: Hook, priority: int | str = "NORMAL") -> None:
        """Insert ``hook`` after every registered hook of the same or higher priority (lower number)."""
        if not isinstance(hook, Hook):
            raise TypeError(f"{type(hook).__name__} is not a Hook; hooks must subclass mmdet.engine.hooks.Hook")
        if hasattr(hook, "priority"):
            raise ValueError(f"{type(hook).__name__} already has a 'priority' attribute; register it once")
        hook.priority = get_priority(priority)
        position = len(self._hooks)
        while position > 0 and self._hooks[position - 1].priority > hook.priority:
            position -= 1
        self._hooks.insert(position, hook)

    def register_hook_from_cfg(self, hook_cfg: dict) -> None:
        hook_cfg = copy.deepcopy(dict(hook_cfg))
        priority = hook_cfg.pop("priority", "NORMAL")
        self.register_hook(build_from_cfg(hook_cfg, HOOKS), priority=priority)

    def call_hook(self, fn_name: str) -> None:
        for hook in self._hooks:
            getattr(hook, fn_name)(self)

    def get_hook_info(self) -> str:
        """Which hooks run at each stage, in order (logged at the start of a run)."""
        def overrides(hook: Hook, stage: str) -> bool:
            generic = stage.replace("train_", "").replace("val_", "")  # e.g. before_train_epoch -> before_epoch
            return any(getattr(type(hook), name) is not getattr(Hook, name) for name in {stage, generic})

        stages = ["before_run", "before_train_epoch", "before_train_iter", "after_train_iter",
                  "after_train_epoch", "before_val_epoch", "before_val_iter", "after_val_iter",
                  "after_val_epoch", "after_run"]
        blocks = []
        for stage in stages:
            names = [f"({h.priority:<3}) {type(h).__name__}" for h in self._hooks if overrides(h, stage)]
            if names:
                blocks.append(f"{stage}:\n" + "\n".join(names))
        return ("\n" + "-" * 20 + "\n").join(blocks)

    @property
    def optimizer_hook(self) -> OptimizerHook | None:
        return next((h for h in self._hooks if isinstance(h, OptimizerHook)), None)

    def _build_hook(self, cfg, default_type: str | None = None, default_args: dict | None = None) -> Hook:
        if isinstance(cfg, Hook):
            return cfg
        cfg = copy.deepcopy(dict(cfg))
        if default_type is not None:
            cfg.setdefault("type", default_type)
        return build_from_cfg(cfg, HOOKS, default_args)

    def register_lr_hook(self, lr_config) -> None:
        if lr_config is None:
            return
        self.register_hook(build_lr_hook(lr_config), priority="VERY_HIGH")

    def register_momentum_hook(self, momentum_config) -> None:
        if momentum_config is None:
            return
        self.register_hook(build_momentum_hook(momentum_config), priority="HIGH")

    def register_optimizer_hook(self, optimizer_config) -> None:
        if optimizer_config is None:
            return
        self.register_hook(self._build_hook(optimizer_config, "OptimizerHook"), priority="ABOVE_NORMAL")

    def register_checkpoint_hook(self, checkpoint_config) -> None:
        if checkpoint_config is None:
            return
        self.register_hook(self._build_hook(checkpoint_config, "CheckpointHook"), priority="NORMAL")

    def register_timer_hook(self, timer_config) -> None:
        if timer_config is None:
            return
        self.register_hook(self._build_hook(timer_config, "IterTimerHook"), priority="LOW")

    def register_logger_hooks(self, log_config) -> None:
        if log_config is None:
            return
        interval = log_config["interval"]
        for info in log_config["hooks"]:
            self.register_hook(self._build_hook(info, default_args=dict(interval=interval)), priority="VERY_LOW")

    def register_custom_hooks(self, custom_config) -> None:
        if custom_config is None:
            return
        for item in custom_config if isinstance(custom_config, (list, tuple)) else [custom_config]:
            if isinstance(item, Hook):
                self.register_hook(item, priority="NORMAL")
            else:
                self.register_hook_from_cfg(item)

    def register_training_hooks(self, lr_config, optimizer_config=None, checkpoint_config=None, log_config=None,
                                momentum_config=None, timer_config=dict(type="IterTimerHook"),
                                custom_hooks_config=None) -> None:
        """Default hooks with mmcv's priorities: lr VERY_HIGH, momentum HIGH, optimizer ABOVE_NORMAL,
        checkpoint NORMAL, timer LOW, loggers VERY_LOW, custom hooks their own (default NORMAL)."""
        self.register_lr_hook(lr_config)
        self.register_momentum_hook(momentum_config)
        self.register_optimizer_hook(optimizer_config)
        self.register_checkpoint_hook(checkpoint_config)
        self.register_timer_hook(timer_config)
        self.register_logger_hooks(log_config)
        self.register_custom_hooks(custom_hooks_config)

    # --- one iteration -------------------------------------------------------------------------
    def _check_finite(self, log_vars: dict) -> None:
        bad = [k for k, v in log_vars.items() if not math.isfinite(v)]
        if not bad:
            return
        terms = [k for k in bad if k != "loss"] or bad
        where = f"iteration {self.iter + 1}"
        if self.by_epoch and self.data_loader is not None:
            where += f" (epoch {self.epoch + 1}, iter {self.inner_iter + 1}/{len(self.data_loader)})"
        raise NonFiniteLossError(
            f"non-finite loss at {where}: {', '.join(f'{k}={log_vars[k]}' for k in terms)}; training stopped "
            f"before the optimizer step. Lower the learning rate, set optimizer_config.grad_clip, or check "
            f"the annotations of this batch")

    def _grad_sync_context(self):
        """``model.no_sync()`` on DDP iterations that only accumulate gradients."""
        hook = self.optimizer_hook
        if (isinstance(self.model, nn.parallel.DistributedDataParallel) and hook is not None
                and not hook.is_update_iter(self)):
            return self.model.no_sync()
        return contextlib.nullcontext()

    def run_iter(self, data_batch, train_mode: bool) -> None:
        """Forward one batch; store ``self.outputs`` (``loss``, ``log_vars``, ``num_samples``) and log_vars."""
        if self.batch_processor is not None:
            outputs = self.batch_processor(self.model, data_batch, train_mode=train_mode)
        else:
            from mmdet.datasets.collate import unwrap_batch
            inputs = unwrap_batch(data_batch, self.device)
            sync = self._grad_sync_context() if train_mode else contextlib.nullcontext()
            with sync, autocast(self.device.type, self.amp_dtype):
                losses = self.model(**inputs)
            loss, log_vars = unwrap_model(self.model)._parse_losses(losses)
            outputs = dict(loss=loss, log_vars=log_vars, num_samples=len(inputs["img_metas"]))
        if train_mode:
            self._check_finite(outputs["log_vars"])
        self.log_buffer.update(outputs["log_vars"], outputs["num_samples"])
        self.outputs = outputs

    # --- random generator states -----------------------------------------------------------------
    def _capture_rng_states(self) -> list[dict]:
        """This state on every rank (all ranks call this together), indexed by rank."""
        state = get_rng_state()
        if not is_distributed():
            return [state]
        states: list = [None] * self.world_size
        dist.all_gather_object(states, state)
        return states

    def _restore_epoch_rng_state(self) -> None:
        if self._epoch_rng_states:
            set_rng_state(self._epoch_rng_states[self.rank % len(self._epoch_rng_states)])

    # --- checkpoints ----------------------------------------------------------------------------
    def _checkpoint_counters(self) -> tuple[int, int, int]:
        """(meta epoch, meta iter, number in the default file name) at save time."""
        raise NotImplementedError

    def save_checkpoint(self, out_dir: str, filename_tmpl: str | None = None, save_optimizer: bool = True,
                        meta: dict | None = None, create_symlink: bool = True) -> str:
        """Write ``out_dir/filename_tmpl.format(n)`` atomically (and ``latest.pth``); return its path.

        ``meta`` (e.g. ``CLASSES``, ``mmdet_version`` from the checkpoint config) is merged with
        ``runner.meta``, ``epoch`` (completed epochs) and ``iter`` (completed iterations).
        """
        epoch, iteration, number = self._checkpoint_counters()
        filename_tmpl = filename_tmpl or ("epoch_{}.pth" if self.by_epoch else "iter_{}.pth")
        if meta is not None and not isinstance(meta, dict):
            raise TypeError(f"checkpoint meta must be a dict, got {type(meta).__name__}")
        meta = dict(meta or {})
        meta.update(self.meta)
        meta.update(epoch=epoch, iter=iteration)
        classes = getattr(unwrap_model(self.model), "CLASSES", None)
        if classes is not None:
            meta["CLASSES"] = tuple(classes)
        extra = {"rng_state": self._epoch_rng_states or [get_rng_state()]}
        hook = self.optimizer_hook
        scaler_state = hook.scaler_state_dict() if hook is not None else None
        if scaler_state is not None:
            extra["grad_scaler"] = scaler_state
        path = os.path.join(out_dir, filename_tmpl.format(number))
        save_checkpoint(self.model, path, optimizer=self.optimizer if save_optimizer else None, meta=meta,
                        extra=extra)
        if create_symlink:
            _link_latest(path)
        return path

    def load_checkpoint(self, filename: str, map_location="cpu", strict: bool = False,
                        revise_keys=((r"^module\.", ""),)):
        """Load weights only (``load_from``); returns the checkpoint dict."""
        return load_checkpoint(self.model, filename, map_location=map_location, strict=strict,
                               logger=self.logger, revise_keys=list(revise_keys))

    def _rescale_iter_for_world_size(self, meta: dict) -> None:
        """mmcv 1.7 rule: resuming with a different GPU count rescales ``iter`` by old / new count."""
        match = re.search(r"gpu_ids\s*=\s*range\(0,\s*(\d+)\)", str(meta.get("config", "")))
        if match and int(match.group(1)) != self.world_size:
            previous = int(match.group(1))
            self._iter = int(self._iter * previous / self.world_size)
            self.logger.info(f"the number of GPUs changed from {previous} to {self.world_size}: "
                             f"iter rescaled to {self._iter}")

    def resume(self, checkpoint: str, resume_optimizer: bool = True, map_location="default") -> None:
        """Restore weights, optimizer (incl. lr of every group), epoch / iter, loss scaler and RNG states."""
        if map_location == "default":
            map_location = self.device
        ckpt = self.load_checkpoint(checkpoint, map_location=map_location)
        meta = ckpt.get("meta") or {}
        if "epoch" not in meta or "iter" not in meta:
            raise KeyError(f"{checkpoint} has no meta.epoch / meta.iter, so it is not a training checkpoint that "
                           f"can be resumed; use load_from={checkpoint!r} to start from its weights")
        self._epoch, self._iter = int(meta["epoch"]), int(meta["iter"])
        self._rescale_iter_for_world_size(meta)
        if "hook_msgs" in meta:
            self.meta.setdefault("hook_msgs", {}).update(meta["hook_msgs"])
        if resume_optimizer and "optimizer" in ckpt:
            if isinstance(self.optimizer, dict):
                for name, opt in self.optimizer.items():
                    opt.load_state_dict(ckpt["optimizer"][name])
            else:
                self.optimizer.load_state_dict(ckpt["optimizer"])
        scaler_state = self._scaler_state_from(ckpt)
        if scaler_state is not None and self.optimizer_hook is not None:
            self.optimizer_hook.load_scaler_state_dict(scaler_state)
        if "rng_state" in ckpt:
            self._epoch_rng_states = list(ckpt["rng_state"])
        self.logger.info(f"resumed epoch {self.epoch}, iter {self.iter}")

    @staticmethod
    def _scaler_state_from(ckpt: dict) -> dict | None:
        """GradScaler state from ours (``grad_scaler``), mmcv's (``meta.fp16.loss_scaler``) or apex (``amp``)."""
        if "grad_scaler" in ckpt:
            return ckpt["grad_scaler"]
        fp16_meta = (ckpt.get("meta") or {}).get("fp16") or {}
        if "loss_scaler" in fp16_meta:
            return fp16_meta["loss_scaler"]
        apex_state = ckpt.get("amp") or {}
        if "loss_scaler0" in apex_state:
            return {"scale": float(apex_state["loss_scaler0"]["loss_scale"]), "growth_factor": 2.0,
                    "backoff_factor": 0.5, "growth_interval": 2000, "_growth_tracker": 0}
        return None

    def _check_run_args(self, data_loaders: list, workflow: list, unit: str, run_arg: int | None) -> None:
        """What both runners' ``run()`` check first: one loader per workflow phase; ``max_<unit>`` passed to
        ``run()`` (deprecated) overrides the runner's; without either the run cannot start.

        Args:
            unit: ``'epochs'`` or ``'iters'`` (the ``runner=dict(max_<unit>=...)`` key).
            run_arg: the ``max_<unit>`` argument of ``run()``, or None.
        """
        if len(data_loaders) != len(workflow):
            raise ValueError(f"{len(data_loaders)} data loaders for a workflow of {len(workflow)} phases {workflow}")
        if run_arg is not None:
            warnings.warn(f"setting max_{unit} in run() is deprecated; set it in runner=dict(max_{unit}=...)")
            setattr(self, f"_max_{unit}", run_arg)
        if getattr(self, f"_max_{unit}") is None:
            name = type(self).__name__
            raise ValueError(f"{name} needs max_{unit} (runner=dict(type='{name}', max_{unit}=N))")

    def _log_run_start(self, workflow, limit: str) -> None:
        self.logger.info(f"Start running, host: {get_host_info()}, work_dir: {self.work_dir}")
        self.logger.info(f"Hooks will be executed in the following order:\n{self.get_hook_info()}")
        self.logger.info(f"workflow: {workflow}, max: {limit}")


@RUNNERS.register_module(name=["EpochBasedRunner", "EpochBasedRunnerAmp"])
class EpochBasedRunner(BaseRunner):
    """Epoch loop. ``EpochBasedRunnerAmp`` (the seeds' apex runner) is the same class: AMP comes from the
    optimizer hook (``DistOptimizerHook(use_fp16=True)`` / ``fp16=...``) and its GradScaler state is
    checkpointed as ``grad_scaler``; apex ``amp`` entries of old checkpoints are read on resume."""

    by_epoch = True

    def _checkpoint_counters(self):
        return self.epoch + 1, self.iter, self.epoch + 1

    def train(self, data_loader, **kwargs) -> None:
        self.model.train()
        self.mode = "train"
        self.data_loader = data_loader
        self._max_iters = self._max_epochs * len(data_loader)
        self._restore_epoch_rng_state()
        self.call_hook("before_train_epoch")
        for i, data_batch in enumerate(data_loader):
            self._inner_iter = i
            self.call_hook("before_train_iter")
            self.run_iter(data_batch, train_mode=True)
            self.call_hook("after_train_iter")
            self._iter += 1
        self._epoch_rng_states = self._capture_rng_states()
        self.call_hook("after_train_epoch")
        self._epoch += 1

    @torch.no_grad()
    def val(self, data_loader, **kwargs) -> None:
        self.model.eval()
        self.mode = "val"
        self.data_loader = data_loader
        self.call_hook("before_val_epoch")
        for i, data_batch in enumerate(data_loader):
            self._inner_iter = i
            self.call_hook("before_val_iter")
            self.run_iter(data_batch, train_mode=False)
            self.call_hook("after_val_iter")
        self.call_hook("after_val_epoch")

    def run(self, data_loaders: list, workflow: list, max_epochs: int | None = None, **kwargs) -> None:
        """Run ``workflow`` (e.g. ``[('train', 1), ('val', 1)]``, one loader per phase) until ``max_epochs``."""
        self._check_run_args(data_loaders, workflow, "epochs", max_epochs)
        for (mode, _), loader in zip(workflow, data_loaders):
            if mode not in ("train", "val"):
                raise ValueError(f"unknown workflow phase {mode!r}; use 'train' or 'val'")
            if mode == "train":
                self._max_iters = self._max_epochs * len(loader)
        self._log_run_start(workflow, f"{self._max_epochs} epochs")
        self.call_hook("before_run")
        while self.epoch < self._max_epochs:
            for (mode, epochs), loader in zip(workflow, data_loaders):
                for _ in range(epochs):
                    if mode == "train" and self.epoch >= self._max_epochs:
                        break
                    getattr(self, mode)(loader, **kwargs)
        self.call_hook("after_run")


class IterLoader:
    """Endless iterator over a DataLoader; each pass is one 'epoch' (sampler reseeded via ``set_epoch``)."""

    def __init__(self, dataloader, epoch: int = 0):
        self._dataloader = dataloader
        self._epoch = epoch
        self._iterator = None

    @property
    def epoch(self) -> int:
        return self._epoch

    def _new_pass(self) -> None:
        sampler = getattr(self._dataloader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(self._epoch)
        self._iterator = iter(self._dataloader)

    def __next__(self):
        if self._iterator is None:
            self._new_pass()
        try:
            return next(self._iterator)
        except StopIteration:
            self._epoch += 1
            self._new_pass()
            return next(self._iterator)

    def __len__(self) -> int:
        return len(self._dataloader)


@RUNNERS.register_module()
class IterBasedRunner(BaseRunner):
    """Iteration loop over cycled loaders; hooks should use ``by_epoch=False``.

    Resuming restores weights, optimizer, iteration and RNG states; the data stream restarts at a
    fresh pass of the loader (as in mmcv), so mid-pass resumes are not bit-identical.
    """

    by_epoch = False

    def _checkpoint_counters(self):
        return self.epoch + 1, self.iter + 1, self.iter + 1

    def train(self, data_loader: IterLoader, **kwargs) -> None:
        self.model.train()
        self.mode = "train"
        self.data_loader = data_loader._dataloader
        self._epoch = data_loader.epoch
        data_batch = next(data_loader)
        self.call_hook("before_train_iter")
        self.run_iter(data_batch, train_mode=True)
        self.call_hook("after_train_iter")
        self._inner_iter += 1
        self._iter += 1

    @torch.no_grad()
    def val(self, data_loader: IterLoader, **kwargs) -> None:
        self.model.eval()
        self.mode = "val"
        self.data_loader = data_loader._dataloader
        data_batch = next(data_loader)
        self.call_hook("before_val_iter")
        self.run_iter(data_batch, train_mode=False)
        self.call_hook("after_val_iter")
        self._inner_iter += 1

    def resume(self, checkpoint: str, resume_optimizer: bool = True, map_location="default") -> None:
        super().resume(checkpoint, resume_optimizer, map_location)
        self._inner_iter = self._iter
        if self._epoch_rng_states:
            self._restore_epoch_rng_state()

    def run(self, data_loaders: list, workflow: list, max_iters: int | None = None, **kwargs) -> None:
        self._check_run_args(data_loaders, workflow, "iters", max_iters)
        loaders = [IterLoader(loader, self._epoch) for loader in data_loaders]
        self._log_run_start(workflow, f"{self._max_iters} iters")
        self.call_hook("before_run")
        self.call_hook("before_epoch")
        while self.iter < self._max_iters:
            for (mode, iters), loader in zip(workflow, loaders):
                self._inner_iter = 0
                for _ in range(iters):
                    if mode == "train" and self.iter >= self._max_iters:
                        break
                    getattr(self, mode)(loader, **kwargs)
        self.call_hook("after_epoch")
        self.call_hook("after_run")


def build_runner(cfg: dict, default_args: dict | None = None) -> BaseRunner:
    """Build from ``runner=dict(type=..., max_epochs / max_iters)`` with ``default_args`` (model, optimizer ...)."""
    return build_from_cfg(copy.deepcopy(dict(cfg)), RUNNERS, default_args)
