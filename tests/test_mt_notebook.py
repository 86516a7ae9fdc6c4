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
    expected = [("Table 2", m, "MSE") for m in ("MT", "MT-encoder", "MT-decoder")]
    expected += [("Table 3", m, "perplexity") for m in ("MT-U", "MT-I", "MT-P", "N-gram", "LSTM", "GCN-P")]
    expected += [("Table 4", m, "tf-idf") for m in ("MT-U", "MT-I", "MT-P", "N-gram", "Opinosis")]
    expected += [("Sec. 4.3", f"{w} discriminator", "accuracy") for w in ("user", "item")]
    for key in expected:
        assert key in rows, key
        m = rows[key]
        assert m["n"] == n == len(m["values"])
        assert m["value"] == pytest.approx(np.mean(m["values"]), rel=1e-12)
        assert m["std"] == pytest.approx(np.std(m["values"], ddof=1), rel=1e-9)
        assert m["compare_to"] == "amazon2014-electronics"
    n_outputs = cfg["max_vocab"] + 5 - 2  # vocabulary + specials, minus PAD and BOS
    for (table, model, metric), m in rows.items():
        if metric == "MSE":
            # MT and the simple baselines predict around the training mean: errors of a 1-5 scale
            # (an untuned baseline such as PMF with its small default prior may overfit far worse)
            bound = 4.0 if model.startswith("MT") or m["compare_to"] is None else 100.0
            assert all(0.05 < v < bound for v in m["values"]), (model, m["values"])
        elif metric == "perplexity" and model.startswith("MT"):
            assert all(1.0 < v < n_outputs for v in m["values"]), (model, m["values"])
        elif metric in ("tf-idf", "accuracy"):
            assert all(0.0 <= v <= 1.0 for v in m["values"]), (model, m["values"])


def test_record_has_claims_curves_examples_and_figures(record):
    claims = [c["claim"] for c in record["claims"]]
    for text in ("lower MSE than PMF", "encoder or the decoder", "lower perplexity than every baseline",
                 "higher tf-idf similarity", "user discriminator", "item discriminator", "fooled"):
        assert any(text in c for c in claims), text
    cfg = record["config"]
    steps = list(range(0, cfg["fig3_steps"] + 1, cfg["fig3_eval_every"]))
    for name in ("U", "I", "P"):
        curve = record["curves"][f"Figure 3/MT-{name}"]
        assert curve["x"] == steps and all(0.0 <= y <= 1.0 for y in curve["y"])
    assert len(record["curves"]["MT training/fold0"]["x"]) == cfg["n_epochs"]
    examples = record["tables"]["Sec. 4.4 examples"]
    assert len(examples) == cfg["n_examples"] and all(e["ground truth"] for e in examples)
    for name in ("Figure 3", "Table 2", "Table 3", "Table 4"):
        assert Path(record["artifacts"][name]).suffix == ".png" and Path(record["artifacts"][name]).exists()


def test_recorded_numbers_are_reproduced_by_recomputation(record, data_dir):
    """Rebuild fold 0 from the data and the recorded config and recompute numbers independently of
    the stored units: the fold sizes, the tuned lambda, the n-gram perplexity and the MT-decoder MSE."""
    from xrec_core.device import set_seed, set_threads

    set_threads(1)
    cfg = mt.MTConfig.from_scale("smoke", n_threads=1, data_dir=str(data_dir))
    recorded = {k: v for k, v in record["config"].items() if k not in ("results_dir", "data_dir")}
    assert json.loads(json.dumps({k: v for k, v in cfg.as_dict().items() if k in recorded})) == recorded
    corpus = mt.load_corpus(cfg)
    fold = mt.fold_data(corpus, 0, cfg)
    folds = record["tables"]["folds"]
    assert folds[0]["n_test"] == len(fold.test) and folds[0]["n_train"] == len(fold.train)
    lam = mt.tune_lambda(cfg, fold)
    assert folds[0]["lambda_U = lambda_V"] == lam
    rows = _rows(record)
    ngram = mt.run_text_baseline_fold(cfg, corpus, fold, "N-gram")
    assert ngram["perplexity"] == pytest.approx(rows[("Table 3", "N-gram", "perplexity")]["values"][0], rel=1e-9)
    set_seed(cfg.seed)
    dec = mt.run_ablation_fold(cfg, corpus, fold, "no_decoder", lam)
    assert dec == pytest.approx(rows[("Table 2", "MT-decoder", "MSE")]["values"][0], rel=1e-6)
    if mt.available("simple"):
        t = fold.tensors
        want = np.mean((t.ratings[fold.test] - t.ratings[fold.train].mean()) ** 2)
        assert rows[("Table 2", "Global mean", "MSE")]["values"][0] == pytest.approx(want, rel=1e-9)
