"""The one trainer: it converges to a closed form, stops by patience and keeps the best state."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrec_core import health
from xrec_core.training import Trainer


def _regression(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(256, 3, generator=g)
    y = X @ torch.tensor([1.5, -2.0, 0.5]) + 0.3 + 0.01 * torch.randn(256, generator=g)
    return X, y


def test_converges_to_least_squares_and_records_the_curve():
    torch.manual_seed(0)
    X, y = _regression()
    net = torch.nn.Linear(3, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    batches = lambda epoch: [(X[i:i + 64], y[i:i + 64]) for i in range(0, 256, 64)]  # noqa: E731
    step = lambda b: ((net(b[0]).squeeze(1) - b[1]) ** 2).mean()  # noqa: E731
    valid = lambda: float(((net(X).squeeze(1) - y) ** 2).mean())  # noqa: E731
    curve = Trainer(max_epochs=300, patience=5, min_delta=1e-7, grad_clip=10.0).fit(
        net, batches=batches, step=step, validate=valid, optimizer=opt)
    A = np.c_[X.numpy(), np.ones(256)]
    w = np.linalg.lstsq(A, y.numpy(), rcond=None)[0]
    got = np.r_[net.weight.detach().numpy().ravel(), net.bias.detach().numpy()]
    np.testing.assert_allclose(got, w, atol=2e-3)
    assert curve.stopped_early and curve.epochs < 300
    assert curve.train_loss[0] > curve.train_loss[-1] and len(curve.valid) == curve.epochs
    assert curve.best_value <= min(curve.valid) + 1e-7  # later gains below min_delta do not count


def test_stops_after_patience_and_restores_the_best_state():
    net = torch.nn.Linear(1, 1, bias=False)
    w0 = float(net.weight.detach())
    scores = [5.0, 3.0, 2.0, 2.5, 2.6, 2.7, 1.0]  # best at epoch 3, patience 3 ends at epoch 6

    def step(_):
        with torch.no_grad():
            net.weight += 1.0  # weight = epoch after each epoch
        return 0.0

    it = iter(scores)
    curve = Trainer(max_epochs=20, patience=3).fit(net, batches=lambda e: [None], step=step, validate=lambda: next(it))
    assert curve.best_epoch == 3 and curve.epochs == 6 and curve.stopped_early
    assert float(net.weight.detach()) == pytest.approx(w0 + 3.0)  # the state after epoch 3, not epoch 6
    assert curve.best_value == 2.0


def test_best_state_is_the_best_epochs_weights():
    net = torch.nn.Linear(1, 1, bias=False)
    with torch.no_grad():
        net.weight.fill_(0.0)
    scores = iter([3.0, 1.0, 2.0, 4.0])

    def step(_):
        with torch.no_grad():
            net.weight += 1.0
        return 0.0

    Trainer(max_epochs=10, patience=2).fit(net, batches=lambda e: [None], step=step, validate=lambda: next(scores))
    assert float(net.weight.detach()) == 2.0  # the weights after epoch 2, the best validation


def test_max_mode_and_pruning_hook():
    net = torch.nn.Linear(1, 1)
    seen = []

    def prune(epoch, value):
        seen.append((epoch, value))
        if epoch == 2:
            raise RuntimeError("pruned")

    vals = iter([0.1, 0.2, 0.3])
    with pytest.raises(RuntimeError, match="pruned"):
        Trainer(max_epochs=5, patience=2, mode="max").fit(net, batches=lambda e: [None], step=lambda b: 0.0,
                                                           validate=lambda: next(vals), on_epoch=prune)
    assert seen == [(1, 0.1), (2, 0.2)]


def test_epoch_cap_is_marked_not_converged():
    net = torch.nn.Linear(1, 1)
    vals = iter([5.0, 4.0, 3.0])
    curve = Trainer(max_epochs=3, patience=2).fit(net, batches=lambda e: [None], step=lambda b: 0.0, validate=lambda: next(vals))
    assert not curve.converged and curve.best_epoch == 3 and curve.as_dict()["converged"] is False


def test_a_fit_at_its_cap_whose_best_epoch_came_earlier_did_not_converge():
    # one definition of convergence (health.curve_converged): the fit's own early stopping ended it;
    # here patience (2) had one validation left at the cap, so it had not decided the curve stopped improving
    net = torch.nn.Linear(1, 1)
    vals = iter([5.0, 3.0, 4.0])
    curve = Trainer(max_epochs=3, patience=2).fit(net, batches=lambda e: [None], step=lambda b: 0.0, validate=lambda: next(vals))
    assert not curve.stopped_early and curve.best_epoch == 2 and not curve.converged
    assert not health.curve_converged(curve.as_dict()) and health.stopped_by_cap(curve.as_dict())


def test_a_fit_whose_patience_ran_out_at_its_cap_converged():
    net = torch.nn.Linear(1, 1)
    vals = iter([5.0, 3.0, 4.0, 4.5])
    curve = Trainer(max_epochs=4, patience=2).fit(net, batches=lambda e: [None], step=lambda b: 0.0, validate=lambda: next(vals))
    assert curve.stopped_early and curve.epochs == 4 and curve.best_epoch == 2 and curve.converged
