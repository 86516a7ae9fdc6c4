import torch
from torch import nn

from xrec_core.models._early_stopping import EarlyStopping


def test_stops_after_patience_and_restores_the_best_weights():
    net = nn.Linear(1, 1, bias=False)
    stopper = EarlyStopping(patience=2, mode="min")
    decisions = []
    for weight, score in [(1.0, 0.5), (2.0, 0.3), (3.0, 0.4), (4.0, 0.35)]:
        net.weight.data.fill_(weight)
        decisions.append(stopper.step(score, net))
    assert decisions == [False, False, False, True]
    assert stopper.best == 0.3
    stopper.restore(net)
    assert net.weight.item() == 2.0


def test_max_mode_and_min_delta():
    net = nn.Linear(1, 1)
    stopper = EarlyStopping(patience=1, mode="max", min_delta=0.01)
    assert not stopper.step(0.10, net)
    assert stopper.step(0.105, net)  # not better by more than min_delta
    assert stopper.best == 0.10 and stopper.improved_once


def test_restore_without_evaluation_is_a_no_op():
    net = nn.Linear(1, 1)
    before = net.weight.detach().clone()
    EarlyStopping(patience=3).restore(net)
    assert torch.equal(net.weight, before)
