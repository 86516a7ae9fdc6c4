"""The NAR / CAR / CNR protocol on a small synthetic split: golden values, resuming after an interrupt, crashed units."""

from __future__ import annotations

import dataclasses
import json

import pytest

from xrec_core.experiments import nar
from xrec_core.experiments.nar import protocol, report
from xrec_core.records import RunRecorder


def toy_data(seed: int = 0) -> nar.NARData:
    return nar.synthetic_data(seed, n_users=40, n_items=30, n_features=6)


def toy_config(tmp_path, **overrides) -> nar.NARConfig:
    return nar.NARConfig.from_scale("smoke", **{"dim": 4, "max_epochs": 3, "patience": 2, "n_seeds": 1,
                                                "valid_candidates": 10, "n_candidates": 10, "explain_users": 20,
                                                "explain_k": 2, "results_dir": str(tmp_path), "n_threads": 1,
                                                "device": "cpu"} | overrides)


def run(cfg, tmp_path, name="run"):
    rec = RunRecorder("nar", config=cfg, scale=cfg.scale, dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path,
                      name=name)
    out = nar.run_protocol(cfg, rec, units_root=tmp_path / f"units_{name}", data=toy_data())
    return rec, out


@pytest.fixture
def no_figures(monkeypatch):
    """Figures are not what these tests check; drawing them would dominate the runtime."""
    monkeypatch.setattr(report, "_figures", lambda *args, **kwargs: {})


def test_golden_values_of_car_and_nar_on_the_toy_split(tmp_path):
    """Exact on CPU with the fixed seed; regenerate only for an intended change of the models or the split."""
    from xrec_core.device import set_seed

    cfg = toy_config(tmp_path)
    data = toy_data()
    set_seed(cfg.seed)
    car = protocol.run_model("CAR", data, cfg, cfg.seed)
    set_seed(cfg.seed)
    nar_out = protocol.run_model("NAR", data, cfg, cfg.seed)
    assert car["ranking"]["NDCG"] == pytest.approx(GOLDEN["CAR NDCG"], abs=1e-6)
    assert car["explain"]["F1"] == pytest.approx(GOLDEN["CAR F1@2"], abs=1e-6)
    assert nar_out["ranking"]["NDCG"] == pytest.approx(GOLDEN["NAR NDCG"], abs=1e-6)
    assert nar_out["explain"]["F1"] == pytest.approx(GOLDEN["NAR F1@2"], abs=1e-6)
    assert car["learning_curves"]["base"]["train_loss"][0] == pytest.approx(GOLDEN["CAR first loss"], abs=1e-6)
    # the unit keeps the explanation vectors of the sampled users only
    assert nar.decode_matrix(car["explanations"]).shape == (20, 6) and len(car["explained_users"]) == 20


GOLDEN = {"CAR NDCG": 0.656712656428722, "CAR F1@2": 0.41, "NAR NDCG": 0.6818230815809754, "NAR F1@2": 0.41,
          "CAR first loss": 0.6926898956298828}


def test_an_interrupted_run_resumes_with_the_missing_units_only(tmp_path, monkeypatch, no_figures):
    real = protocol.run_model
    reference, _ = run(toy_config(tmp_path), tmp_path, "reference")

    calls = {"n": 0}

    def interrupted_after_four(*args, **kwargs):
        if calls["n"] == 4:
            raise KeyboardInterrupt  # the session is killed while the fifth unit runs
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(protocol, "run_model", interrupted_after_four)
    with pytest.raises(KeyboardInterrupt):
        run(toy_config(tmp_path), tmp_path, "resumed")

    computed = []

    def counting(name, *args, **kwargs):
        computed.append(name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(protocol, "run_model", counting)
    resumed, _ = run(toy_config(tmp_path), tmp_path, "resumed")
    models = nar.PAPER_MODELS + nar.EXTRA_MODELS
    assert computed == list(models[4:])  # the four finished units were loaded, not recomputed
    a, b = reference.as_dict(), resumed.as_dict()
    for key in ("metrics", "claims", "health", "tables"):
        assert json.dumps(a[key], sort_keys=True) == json.dumps(b[key], sort_keys=True), key

    def without_time(curves):  # wall-clock seconds differ between runs; everything else must not
        return {m: {u: {k: v for k, v in c.items() if k != "seconds"} for u, c in units.items()} for m, units in curves.items()}

    assert without_time(a["learning_curves"]) == without_time(b["learning_curves"])


def test_a_crashed_baseline_is_noted_and_makes_its_claims_untestable(tmp_path, monkeypatch, no_figures):
    real = protocol.run_model

    def bpr_crashes(name, *args, **kwargs):
        if name == "BPR (tuned)":
            raise FloatingPointError("diverged")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(protocol, "run_model", bpr_crashes)
    rec, _ = run(toy_config(tmp_path), tmp_path)
    assert any("crashed: BPR (tuned)" in n and "FloatingPointError" in n for n in rec.notes)
    assert any(n.startswith("missing rows") and "BPR (tuned)" in n for n in rec.notes)
    assert not any(n.startswith("crashed") and "BPR (tuned)" not in n for n in rec.notes)
    assert "BPR (tuned)" not in {m.model for m in rec.metrics}
    for claim in rec.claims:
        if "BPR (tuned)" in claim.models:
            assert claim.verdict == "untestable" and "BPR (tuned)" in claim.evidence


def test_every_row_health_and_curve_is_recorded(tmp_path, no_figures):
    rec, out = run(toy_config(tmp_path), tmp_path)
    rows = {(m.table, m.model, m.metric) for m in rec.metrics}
    for model in nar.PAPER_MODELS + nar.EXTRA_MODELS:
        assert all(("Table 4", model, metric) in rows for metric in nar.RANK_METRICS), model
    assert {r.model for r in rec.metrics if r.table == "Table 3"} == set(nar.EXPLAINERS)
    assert {c["model"] for c in rec.health} == set(nar.LEARNED_MODELS)
    assert {"NAR", "CAR", "CAR (adversarial)", "CNR (minimax)", "CER", "NCF"} <= set(rec.learning_curves)
    assert [n for n in rec.notes if not n.startswith("not tuned")] == []
    for m in ("NAR", "CAR", "CNR"):
        assert len(json.dumps(out["results"][m][0])) < 1_000_000  # a unit stays small enough to commit


def test_tuned_parameters_reach_the_run_and_the_record(tmp_path, no_figures):
    cfg = toy_config(tmp_path)
    studies = nar.tune_models(cfg, ["VBPR", "BPR (tuned)"], n_trials=2, data=toy_data())
    assert set(studies) == {"VBPR", "BPR (tuned)"} and all(s.n_trials_done == 2 for s in studies.values())
    tuned = nar.tuned_params(cfg)
    assert set(tuned) == {"VBPR", "BPR (tuned)"} and set(tuned["VBPR"]) == {"lr", "dim", "weight_decay"}
    assert set(tuned["BPR (tuned)"]) == set(nar.search_space("BPR (tuned)"))
    rec, out = run(cfg, tmp_path)
    assert out["results"]["VBPR"][0]["params"] == tuned["VBPR"]
    assert set(rec.tuning) == {"VBPR", "BPR (tuned)"} and rec.tuning["VBPR"]["trials_complete"] >= 1
    assert any(n.startswith("not tuned") and "CAR" in n and "VBPR" not in n for n in rec.notes)
    with pytest.raises(ValueError, match="Unknown model"):
        nar.tune_models(cfg, ["SVD"], n_trials=1, data=toy_data())


def test_a_ranker_still_improving_at_its_cap_is_pruned_in_tuning(tmp_path):
    import optuna

    from xrec_core.tuning import TuningError, study_path

    cfg = dataclasses.replace(toy_config(tmp_path), max_epochs=1, tune_converged_only=True)  # one epoch, its best
    with pytest.raises(TuningError, match="every one was pruned"):
        nar.tune_models(cfg, ["VBPR"], n_trials=2, data=toy_data())
    study = optuna.load_study(study_name="VBPR", storage=f"sqlite:///{study_path('nar', cfg.dataset, tmp_path, cfg.scale)}")
    assert all(t.user_attrs["not_converged"] == "stopped by the epoch cap before patience ran out: base (1 of 1 epochs)" for t in study.trials)
