"""The model registry: registration, building with the config's values, one-line errors."""

from __future__ import annotations

import numpy as np
import pytest

from xrec_core.models import registry as reg


class _Mean:
    def __init__(self, shrink: float) -> None:
        self.shrink = shrink

    def fit(self, train, valid=None):
        self.mu_ = float(np.mean(train)) * (1 - self.shrink)
        return self

    def predict(self, users, items):
        return np.full(len(users), self.mu_)


def test_register_build_and_role(monkeypatch):
    monkeypatch.setattr(reg, "REGISTRY", {})
    monkeypatch.setattr(reg, "MODEL_MODULES", ())
    reg.register("TestMean", role=reg.RATING, search_space={"shrink": (0.0, 0.5)})(_Mean)
    model = reg.build("TestMean", shrink=0.5).fit(np.array([2.0, 4.0]))
    assert model.predict(np.array([0, 1]), np.array([0, 1])).tolist() == [1.5, 1.5]
    assert reg.implements(model, reg.RATING) and not reg.implements(model, reg.GENERATION)
    assert reg.names(reg.RATING) == ["TestMean"] and reg.entry("TestMean").search_space == {"shrink": (0.0, 0.5)}


def test_errors_are_one_line(monkeypatch):
    monkeypatch.setattr(reg, "REGISTRY", {})
    monkeypatch.setattr(reg, "MODEL_MODULES", ())
    reg.register("A", role=reg.RANKING)(_Mean)
    with pytest.raises(reg.UnknownModelError, match="Unknown model 'B'; registered: A"):
        reg.build("B")
    with pytest.raises(ValueError, match="registered twice"):
        reg.register("A", role=reg.RANKING)(lambda: None)
    with pytest.raises(ValueError, match="Unknown role"):
        reg.register("C", role="oracle")


def test_shared_baselines_are_registered_with_their_search_spaces():
    from xrec_core.search_space import Int, LogFloat

    for name in ("MostPop", "BPR", "GlobalMean", "UserItemBias", "BiasedMF", "PMF", "NCF", "CTR", "HFT", "ConvMF+"):
        e = reg.entry(name)
        assert e.name == name and e.role in reg.ROLES
        for param, dim in e.search_space.items():
            assert param in e.factory.__init__.__code__.co_varnames, (name, param)
            assert isinstance(dim, (Int, LogFloat)) or hasattr(dim, "low")
    assert reg.build("BPR", k=7).k == 7


def test_shared_baselines_fit_train_and_valid_as_their_protocol_says():
    """One ``fit(train, valid)`` for every shared baseline (no per-model signatures, no adapters)."""
    import inspect

    for name in ("MostPop", "BPR", "GlobalMean", "UserItemBias", "BiasedMF", "PMF", "NCF", "CTR", "HFT", "ConvMF+"):
        e = reg.entry(name)
        model = e.build()
        params = list(inspect.signature(model.fit).parameters.values())
        assert [p.name for p in params[:2]] == ["train", "valid"] and params[1].default is None, name
        assert all(p.default is not inspect.Parameter.empty for p in params[1:]), name
        assert reg.implements(model, e.role), name
