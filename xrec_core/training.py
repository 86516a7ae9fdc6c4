"""One trainer for every iteratively trained model of the book.

:class:`Trainer` runs epochs of minibatches until the validation metric stops improving
(``patience`` evaluations without improvement, under a generous ``max_epochs`` cap), keeps the
best state, and returns a :class:`LearningCurve` (training loss and validation metric per epoch,
best epoch marked) that goes into the run record and the chapter's learning-curve figure.

It knows nothing about a model's loss: the caller passes

* ``batches(epoch)``: the epoch's minibatches (any objects; tensors inside tuples, lists and dicts
  are moved to the trainer's device),
* ``step(batch)``: the loss of one batch. With an ``optimizer`` the trainer does the backward
  pass, gradient clipping and the update; without one (adversarial or REINFORCE loops that step
  several optimizers themselves) ``step`` does its own updates and returns the loss as a float,
* ``validate()``: the validation metric (run in ``eval`` mode without gradients).

The model only needs ``state_dict()`` / ``load_state_dict()`` (and ``train()`` / ``eval()`` when
present), so a numpy model trained by sweeps (ALS) can use the same early stopping.
A pruning hook ``on_epoch(epoch, value)`` lets an Optuna trial stop hopeless runs
(:mod:`xrec_core.tuning`).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from .health import curve_converged
from .models._early_stopping import EarlyStopping

log = logging.getLogger(__name__)


@dataclass
class LearningCurve:
    """Per-epoch training loss and validation metric of one fit, with the epoch whose state was kept."""

    train_loss: list[float] = field(default_factory=list)
    valid: list[float] = field(default_factory=list)
    valid_epochs: list[int] = field(default_factory=list)  # the epoch of each validation
    valid_metric: str = "validation loss"
    mode: str = "min"
    best_epoch: int = 0  # the epoch (from 1) whose state was kept; 0 when no validation ran
    stopped_early: bool = False
    max_epochs: int = 0
    seconds: float = 0.0

    @property
    def epochs(self) -> int:
        return len(self.train_loss)

    @property
    def best_value(self) -> float:
        return self.valid[self.valid_epochs.index(self.best_epoch)] if self.best_epoch else float("nan")

    @property
    def converged(self) -> bool:
        """Whether the validation metric had stopped improving when training ended (:func:`curve_converged`)."""
        return curve_converged(asdict(self))

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "epochs": self.epochs, "converged": self.converged}


def phase_curves(model: Any) -> dict[str, dict[str, Any]]:
    """``{phase: LearningCurve.as_dict()}`` of a model with several training phases (its ``curves``
    attribute, e.g. MT's ``"generator"`` and ``"adversarial"``); empty for a model without one."""
    return {phase: curve.as_dict() for phase, curve in getattr(model, "curves", {}).items()}


def to_device(batch: Any, device: Any) -> Any:
    """Move every tensor inside nested tuples, lists and dicts to ``device``."""
    import torch

    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(to_device(v, device) for v in batch)
    if hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(to_device(v, device) for v in batch))
    return batch


class Trainer:
    """Minibatch training with early stopping on a validation metric; the best state is kept.

    Parameters
    ----------
    max_epochs : int
        Cap on epochs (generous: training normally ends by patience).
    patience : int
        Validations without improvement before stopping.
    mode : {"min", "max"}
        Whether a lower (loss, RMSE, perplexity) or higher (recall, BLEU) validation value is better.
    min_delta : float
        An improvement must exceed this margin.
    grad_clip : float, optional
        Clip the global gradient norm to this value (with an ``optimizer``).
    device : str or torch.device
        Where batches are moved.
    valid_metric : str
        Name of the validation metric, for the curve and the logs.
    validate_every : int
        Validate every this many epochs (patience counts validations).
    progress : bool
        Show a progress bar over epochs.
    desc : str
        Label of the progress bar and log lines.
    """

    def __init__(self, *, max_epochs: int, patience: int, mode: str = "min", min_delta: float = 0.0,
                 grad_clip: float | None = None, device: Any = "cpu", valid_metric: str = "validation loss",
                 validate_every: int = 1, progress: bool = False, desc: str = "") -> None:
        if max_epochs < 1 or patience < 1 or validate_every < 1:
            raise ValueError(f"max_epochs, patience and validate_every must be >= 1, got {max_epochs}, {patience}, {validate_every}")
        self.max_epochs, self.patience, self.mode, self.min_delta = max_epochs, patience, mode, min_delta
        self.grad_clip, self.device, self.valid_metric = grad_clip, device, valid_metric
        self.validate_every, self.progress, self.desc = validate_every, progress, desc

    def fit(self, model: Any, *, batches: Callable[[int], Iterable[Any]], step: Callable[[Any], Any],
            validate: Callable[[], float], optimizer: Any | None = None, scheduler: Any | None = None,
            on_epoch: Callable[[int, float], None] | None = None) -> LearningCurve:
        """Train ``model`` until validation stops improving; load its best state; return the curve.

        Parameters
        ----------
        model : torch.nn.Module or any object with ``state_dict`` / ``load_state_dict``
        batches : callable
            ``batches(epoch)`` (epoch from 1) yields the epoch's minibatches.
        step : callable
            ``step(batch)``: a scalar loss tensor when ``optimizer`` is given, else a float after
            the step made its own updates.
        validate : callable
            The validation metric after an epoch (evaluated without gradients, in eval mode).
        optimizer, scheduler : optional
            ``scheduler.step()`` is called once per epoch after the updates.
        on_epoch : callable, optional
            ``on_epoch(epoch, value)`` after each validation (e.g. Optuna pruning; may raise).
        """
        import torch

        from .progress import tqdm

        stopper = EarlyStopping(self.patience, self.mode, self.min_delta)
        curve = LearningCurve(valid_metric=self.valid_metric, mode=self.mode, max_epochs=self.max_epochs)
        t0 = time.perf_counter()
        params = [p for group in optimizer.param_groups for p in group["params"]] if optimizer is not None else []
        bar = tqdm(range(1, self.max_epochs + 1), desc=self.desc or "epochs", disable=not self.progress, leave=False)
        for epoch in bar:
            _set_mode(model, train=True)
            total, count = 0.0, 0
            for batch in batches(epoch):
                batch = to_device(batch, self.device)
                if optimizer is not None:
                    optimizer.zero_grad(set_to_none=True)
                    loss = step(batch)
                    loss.backward()
                    if self.grad_clip:
                        torch.nn.utils.clip_grad_norm_(params, self.grad_clip)
                    optimizer.step()
                    value = float(loss.detach())
                else:
                    value = float(step(batch))
                total, count = total + value, count + 1
            if scheduler is not None:
                scheduler.step()
            curve.train_loss.append(total / max(count, 1))
            if epoch % self.validate_every and epoch != self.max_epochs:
                continue
            _set_mode(model, train=False)
            with torch.no_grad():
                score = float(validate())
            curve.valid.append(score)
            curve.valid_epochs.append(epoch)
            if not math.isfinite(score):
                log.warning("%s: validation %s is %s at epoch %d; stopping", self.desc, self.valid_metric, score, epoch)
                break
            stop = stopper.step(score, model)
            if stopper.bad == 0:
                curve.best_epoch = epoch
            log.debug("%s epoch %d: train loss %.4g, %s %.4g", self.desc, epoch, curve.train_loss[-1], self.valid_metric, score)
            bar.set_postfix({"loss": f"{curve.train_loss[-1]:.4g}", self.valid_metric: f"{score:.4g}"})
            if on_epoch is not None:
                on_epoch(epoch, score)
            if stop:
                curve.stopped_early = True
                break
        stopper.restore(model)
        _set_mode(model, train=False)
        curve.seconds = time.perf_counter() - t0
        log.info("%s: %d epochs, best %s %.4g at epoch %d%s", self.desc, len(curve.train_loss), self.valid_metric,
                 curve.best_value, curve.best_epoch, "" if curve.stopped_early else " (epoch cap reached)")
        return curve


def _set_mode(model: Any, *, train: bool) -> None:
    method = getattr(model, "train", None)
    if callable(method) and hasattr(model, "eval"):
        model.train(train)
