"""Optimizer hooks: backward, gradient clipping, optimizer step; AMP loss scaling and gradient accumulation.

Every hook here does, after each training iteration (mmcv 1.x semantics):
``loss / window -> backward (through a GradScaler under fp16) -> [every window-th iteration]
unscale -> clip_grad_norm_ (logs ``grad_norm``) -> step -> zero_grad``.
``window`` is 1 for :class:`OptimizerHook` and :class:`Fp16OptimizerHook`; the accumulating
hooks use ``cumulative_iters`` / ``update_interval``, with windows aligned to the epoch
(the last window of an epoch may be shorter and is divided by its true length), so an
epoch-end checkpoint never holds half-accumulated gradients.

Under fp16 an overflowing step is skipped by the GradScaler and logged (not an error).
The runner (not these hooks) stops training on a non-finite loss.
"""
from __future__ import annotations

import torch
from torch.nn.utils import clip_grad_norm_

from mmdet.registry import HOOKS

from ..amp import build_grad_scaler, resolve_dtype
from .hook import Hook


@HOOKS.register_module()
class OptimizerHook(Hook):
    """FP32 (or AMP, in subclasses) backward + optional clipping + step.

    Args:
        grad_clip: kwargs of ``torch.nn.utils.clip_grad_norm_`` (``max_norm``, ``norm_type``) or None.
        detect_anomalous_params: after backward, log parameters that require grad but got none
            (a debugging aid for ``find_unused_parameters`` errors under DDP).
    """

    cumulative_iters = 1

    def __init__(self, grad_clip: dict | None = None, detect_anomalous_params: bool = False):
        self.grad_clip = grad_clip
        self.detect_anomalous_params = detect_anomalous_params
        self.amp_dtype: torch.dtype | None = None
        self.loss_scale = None
        self.loss_scaler: torch.amp.GradScaler | None = None
        self._static_scale: float | None = None
        self._pending_scaler_state: dict | None = None
        self.skipped_steps = 0

    # --- AMP state -------------------------------------------------------------------------------
    def _enable_amp(self, dtype: str, loss_scale) -> None:
        self.amp_dtype = resolve_dtype(dtype)
        self.loss_scale = loss_scale

    def before_run(self, runner):
        runner.amp_dtype = self.amp_dtype
        if self.amp_dtype is not None:
            self.loss_scaler, self._static_scale = build_grad_scaler(self.loss_scale, self.amp_dtype,
                                                                     runner.device.type)
            if self._pending_scaler_state is not None:
                self.loss_scaler.load_state_dict(self._pending_scaler_state)
                self._pending_scaler_state = None
        runner.optimizer.zero_grad()

    def scaler_state_dict(self) -> dict | None:
        """GradScaler state for checkpoints (None when no scaler is active)."""
        if self.loss_scaler is not None and self.loss_scaler.is_enabled():
            return self.loss_scaler.state_dict()
        return self._pending_scaler_state

    def load_scaler_state_dict(self, state: dict) -> None:
        """Restore a checkpoint's GradScaler state (applied when the run starts)."""
        if self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(state)
        else:
            self._pending_scaler_state = dict(state)

    @property
    def _scaling(self) -> bool:
        return self.loss_scaler is not None and self.loss_scaler.is_enabled()

    # --- accumulation windows ---------------------------------------------------------------------
    def _position(self, runner) -> tuple[int, int]:
        """(0-based position, length) of the sequence that windows are aligned to: the epoch or the whole run."""
        if runner.by_epoch:
            return runner.inner_iter, len(runner.data_loader)
        return runner.iter, runner.max_iters

    def window_size(self, runner) -> int:
        """How many iterations the current accumulation window holds (the loss divisor)."""
        k = self.cumulative_iters
        if k == 1:
            return 1
        pos, total = self._position(runner)
        return min(k, total - (pos - pos % k))

    def is_update_iter(self, runner) -> bool:
        """Whether this iteration ends a window (gradients are applied and DDP must all-reduce)."""
        k = self.cumulative_iters
        if k == 1:
            return True
        pos, total = self._position(runner)
        return (pos + 1) % k == 0 or pos + 1 == total

    # --- the step ---------------------------------------------------------------------------------
    def clip_grads(self, runner) -> float | None:
        params = [p for p in runner.model.parameters() if p.requires_grad and p.grad is not None]
        if not params:
            return None
        return float(clip_grad_norm_(params, **self.grad_clip))

    def _report_params_without_grad(self, runner) -> None:
        names = [n for n, p in runner.model.named_parameters() if p.requires_grad and p.grad is None]
        if names:
            runner.logger.error("parameters that require grad but received none in this backward pass "
                                f"(unused in the loss): {', '.join(names)}")

    def after_train_iter(self, runner):
        loss = runner.outputs["loss"]
        window = self.window_size(runner)
        if window > 1:
            loss = loss / window
        if self._scaling:
            self.loss_scaler.scale(loss).backward()
        else:
            loss.backward()
        if self.detect_anomalous_params:
            self._report_params_without_grad(runner)
        if self.is_update_iter(runner):
            self._apply_gradients(runner)

    def _apply_gradients(self, runner) -> None:
        optimizer = runner.optimizer
        if self.grad_clip is not None:
            if self._scaling:
                self.loss_scaler.unscale_(optimizer)
            grad_norm = self.clip_grads(runner)
            if grad_norm is not None:
                runner.log_buffer.update({"grad_norm": grad_norm}, runner.outputs["num_samples"])
        if self._scaling:
            scale_before = self.loss_scaler.get_scale()
            self.loss_scaler.step(optimizer)
            self.loss_scaler.update()
            scale_after = self.loss_scaler.get_scale()
            if scale_after < scale_before:
                self.skipped_steps += 1
                runner.logger.info(f"fp16 gradient overflow at iteration {runner.iter + 1}: optimizer step skipped "
                                   f"(loss scale {scale_before:g} -> {scale_after:g}, {self.skipped_steps} skipped)")
            if self._static_scale is not None:
                self.loss_scaler.update(self._static_scale)
        else:
            optimizer.step()
        optimizer.zero_grad()


@HOOKS.register_module()
class Fp16OptimizerHook(OptimizerHook):
    """Mixed-precision optimizer hook (``fp16=dict(loss_scale=...)`` in mmdetection 2.x configs).

    Args:
        loss_scale: a number (static scale), ``'dynamic'``, or GradScaler kwargs (``dict(init_scale=512)``).
        dtype: ``'fp16'`` (default, with loss scaling) or ``'bf16'`` (no scaling needed).
        coalesce, bucket_size_mb, distributed: accepted for config compatibility; DDP does the all-reduce.
    """

    def __init__(self, grad_clip: dict | None = None, coalesce: bool = True, bucket_size_mb: int = -1,
                 loss_scale=512., distributed: bool = True, dtype: str = "fp16",
                 detect_anomalous_params: bool = False):
        super().__init__(grad_clip, detect_anomalous_params)
        self._enable_amp(dtype, loss_scale)


@HOOKS.register_module()
class GradientCumulativeOptimizerHook(OptimizerHook):
    """Accumulate gradients over ``cumulative_iters`` iterations before each step.

    Args:
        cumulative_iters: iterations per optimizer step (the loss is divided by the window length).
        use_fp16, dtype, loss_scale: run the forward under autocast (see :class:`Fp16OptimizerHook`).
    """

    def __init__(self, cumulative_iters: int = 1, grad_clip: dict | None = None, use_fp16: bool = False,
                 dtype: str = "fp16", loss_scale="dynamic", detect_anomalous_params: bool = False):
        super().__init__(grad_clip, detect_anomalous_params)
        if not isinstance(cumulative_iters, int) or cumulative_iters < 1:
            raise ValueError(f"cumulative_iters / update_interval must be a positive int, got {cumulative_iters!r}")
        self.cumulative_iters = cumulative_iters
        if use_fp16:
            self._enable_amp(dtype, loss_scale)


@HOOKS.register_module()
class DistOptimizerHook(GradientCumulativeOptimizerHook):
    """The ViTAEv2 / VSA / Swin-Visformer seeds' apex hook on native AMP.

    ``update_interval`` = gradient accumulation steps; ``use_fp16=True`` = float16 autocast with
    dynamic loss scaling (what apex ``opt_level='O1'`` did). ``coalesce`` / ``bucket_size_mb`` are
    unused, as in the seeds.
    """

    def __init__(self, update_interval: int = 1, grad_clip: dict | None = None, coalesce: bool = True,
                 bucket_size_mb: int = -1, use_fp16: bool = False, dtype: str = "fp16", loss_scale="dynamic",
                 detect_anomalous_params: bool = False):
        super().__init__(update_interval, grad_clip, use_fp16, dtype, loss_scale, detect_anomalous_params)
