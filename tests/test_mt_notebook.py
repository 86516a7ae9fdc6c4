"""The MT chapter notebook at smoke scale: its record has the expected rows, claims and curves, and
its numbers are reproduced by recomputation from the data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from xrec_core.experiments import mt

pytestmark = [pytest.mark.slow, pytest.mark.real_data]


@pytest.fixture(scope="module")
def record(smoke_run):
    result = smoke_run("mt")
    records = [r for r in result.load_records() if r["paper"] == "mt"]
    assert len(records) == 1
    return records[0]


def _rows(rec):
    return {(m["table"], m["model"], m["metric"]): m for m in rec["metrics"]}


def test_record_has_every_table_row_with_fold_values(record):
    rows = _rows(record)
    cfg = record["config"]
    assert record["scale"] == "smoke" and record["dataset"] == "amazon2014-instruments"
    n = cfg["folds_run"]
    # every model of Tables 2-4 and every baseline row is present on every fold
    expected = [("Table 2", m, "MSE") for m in (*mt.MT_RATING, *mt.RATING_BASELINES, *mt.SIMPLE_BASELINES)]
    expected += [("Table 3", m, "perplexity") for m in (*mt.MT_TEXT, *mt.LM_BASELINES)]
    expected += [("Table 4", m, "tf-idf") for m in (*mt.MT_TEXT, *mt.LM_BASELINES, "Opinosis")]
    expected += [("Sec. 4.3", d, "accuracy") for d in mt.DISCRIMINATORS]
    for key in expected:
        assert key in rows, key
        m = rows[key]
        assert m["n"] == n == len(m["values"])
        assert m["value"] == pytest.approx(np.mean(m["values"]), rel=1e-12)
        assert m["std"] == pytest.approx(np.std(m["values"], ddof=1), rel=1e-9)
        assert m["compare_to"] == (None if key[1] in mt.SIMPLE_BASELINES else "amazon2014-electronics")
    assert not any("crashed" in note or "missing" in note for note in record["notes"]), record["notes"]
    n_outputs = cfg["max_vocab"] + 5 - 2  # vocabulary + specials, minus PAD and BOS
    for (table, model, metric), m in rows.items():
        if metric == "MSE":
            assert all(0.05 < v < 25.0 for v in m["values"]), (model, m["values"])
        elif metric == "perplexity":
            assert all(1.0 < v < 2 * n_outputs for v in m["values"]), (model, m["values"])
        elif metric in ("tf-idf", "accuracy"):
            assert all(0.0 <= v <= 1.0 for v in m["values"]), (model, m["values"])
    # the Sec. 4.3 test is balanced: a constant answer scores exactly 0.5; ours has 2 x n_test labels
    for row in record["tables"]["Sec. 4.3 discriminators"]:
        assert row["test reviews x 2"] == 2 * record["tables"]["folds"][row["fold"]]["n_test"]


def test_record_has_health_before_verdicts_curves_examples_and_figures(record):
    from xrec_core.claims import VERDICTS

    health = {(h["model"], h["check"]) for h in record["health"]}
    for model in (*mt.MT_RATING, *mt.RATING_BASELINES, "User+item bias", "Biased MF (tuned)"):
        assert (model, "MSE below global mean") in health, model
    for who in mt.DISCRIMINATORS:
        assert any(m == who and "above chance" in c for m, c in health)
    assert ("MT", "training loss went down") in health
    unhealthy = {h["model"] for h in record["health"] if not h["passed"]}
    claims = {c["claim"]: c for c in record["claims"]}
    for text in ("lower MSE than PMF", "encoder or the decoder", "trigram", "lower perplexity than every baseline",
                 "higher tf-idf similarity", "user discriminator", "item discriminator", "learns to detect"):
        claim = next(c for k, c in claims.items() if text in k)
        assert claim["verdict"] in VERDICTS
        # a claim naming an unhealthy model is untestable, never failed
        if set(claim["models"]) & unhealthy:
            assert claim["verdict"] == "untestable" and claim["holds"] is None
    cfg = record["config"]
    curves = record["learning_curves"]
    for model in ("MT: generator pre-training", "MT: rating (ALS)", "MT-decoder: encoder training", "LSTM", "ConvMF+"):
        assert set(curves[model]) == {f"fold{k}" for k in range(cfg["folds_run"])}, model
        for c in curves[model].values():
            assert 1 <= len(c["train_loss"]) <= c["max_epochs"] and c["best_epoch"] >= 1
    steps = list(range(0, cfg["fig3_steps"] + 1, cfg["fig3_eval_every"]))
    for name in ("U", "I", "P"):
        curve = record["curves"][f"Figure 3/MT-{name}"]
        assert curve["x"] == steps and all(0.0 <= y <= 1.0 for y in curve["y"])
    examples = record["tables"]["Sec. 4.4 examples"]
    assert len(examples) == cfg["n_examples"] and all(e["ground truth"] for e in examples)
    for name in ("Figure 3", "learning curves", "Table 2", "Table 3", "Table 4"):
        assert Path(record["artifacts"][name]).suffix == ".png" and Path(record["artifacts"][name]).exists()


def test_recorded_numbers_are_reproduced_by_recomputation(record, data_dir):
    """Rebuild fold 0 from the data and the recorded config and recompute numbers independently of
    the stored units: the fold sizes, the tuned lambda, the n-gram perplexity, the MT-decoder MSE
    and the global mean (the rating models' health floor)."""
    from xrec_core.device import set_seed, set_threads
    from xrec_core.experiments.mt import protocol

    set_threads(1)
    cfg = mt.MTConfig.from_scale("smoke", n_threads=1, data_dir=str(data_dir))
    recorded = {k: v for k, v in record["config"].items() if k not in ("results_dir", "data_dir")}
    assert json.loads(json.dumps({k: v for k, v in cfg.as_dict().items() if k in recorded})) == recorded
    corpus = mt.load_corpus(cfg)
    fold = mt.fold_data(corpus, 0, cfg)
    folds = record["tables"]["folds"]
    assert folds[0]["n_test"] == len(fold.test) and folds[0]["n_train"] == len(fold.fit_rows)
    assert folds[0]["n_valid"] == len(fold.valid)
    lam = mt.tune_lambda(cfg, fold)
    assert folds[0]["lambda_U = lambda_V"] == lam
    rows = _rows(record)
    ngram = mt.run_text_baseline_fold(cfg, corpus, fold, "N-gram")
    assert ngram["perplexity"] == pytest.approx(rows[("Table 3", "N-gram", "perplexity")]["values"][0], rel=1e-9)
    set_seed(cfg.seed)
    dec = protocol.run_ablation_fold(cfg, corpus, fold, "MT-decoder", lam)
    assert dec["MSE"] == pytest.approx(rows[("Table 2", "MT-decoder", "MSE")]["values"][0], rel=1e-6)
    t = fold.tensors
    want = np.mean((t.ratings[fold.test] - t.ratings[fold.fit_rows].mean()) ** 2)
    assert rows[("Table 2", "Global mean", "MSE")]["values"][0] == pytest.approx(want, rel=1e-9)
