"""The "Ask the GRU" chapter at smoke scale: the notebook runs end to end and records a consistent run."""

from __future__ import annotations

import numpy as np
import pytest

from xrec_core.experiments.gru import BASELINES, HR_METRIC, METRIC, MODELS, TAG_METRIC


@pytest.fixture(scope="module")
def record(smoke_run):
    result = smoke_run("gru")
    records = [r for r in result.load_records() if r["paper"] == "gru"]
    assert len(records) == 1
    return records[0]


def test_record_has_table1_rows_for_all_models(record):
    assert record["scale"] == "smoke" and record["dataset"] == "mter-cellphones"
    rows = {(m["model"], m["metric"]): m for m in record["metrics"]}
    for model in MODELS:
        for metric in METRIC.values():
            assert (model, metric) in rows, (model, metric)
        assert (model, HR_METRIC) in rows
    for model in ("GRU-MTL", "Embed-MTL", "CTR-MTL"):
        assert (model, TAG_METRIC) in rows
    for model in BASELINES:
        assert (model, METRIC["warm"]) in rows and rows[(model, METRIC["warm"])]["compare_to"] is None
    for m in record["metrics"]:
        assert np.isfinite(m["value"])
        if "(%)" in m["metric"]:
            assert 0.0 <= m["value"] <= 100.0
        else:
            assert 0.0 <= m["value"] <= sum(1.0 / r for r in range(1, 11))


def test_metrics_are_reproducible_from_the_recorded_units(record):
    """Each row's value is the mean of its per-fold values; Recall@50 equals the Figure-3 curve at M = 50."""
    units = record["tables"]["units"]
    for m in record["metrics"]:
        assert m["value"] == pytest.approx(np.mean(m["values"]), rel=1e-12)
    for u in units:
        scen = u["scenario"]
        row = next(m for m in record["metrics"] if m["model"] == u["model"] and m["metric"] == METRIC[scen])
        assert row["values"][u["fold"]] == pytest.approx(100 * u["recall50"], rel=1e-9)
        curve = record["curves"][f"fig3_{scen}/{u['model']}"]["y"]
        assert len(curve) == 100 and all(b >= a - 1e-12 for a, b in zip(curve, curve[1:]))
        assert curve[49] == pytest.approx(u["recall50"], rel=1e-9)


def test_claims_health_saliency_and_figures(record):
    claims = record["claims"]
    assert any(c["claim"].startswith("cold: GRU beats") for c in claims)
    # smoke runs one fold: no paired test is possible, so every claim is untestable and says why
    assert {c["verdict"] for c in claims} == {"untestable"}
    assert all("1 fold" in c["evidence"] or "health" in c["evidence"] for c in claims)
    health = {(h["model"], h["check"]): h for h in record["health"]}
    for model in MODELS + ("BPR",):
        assert (model, "Recall@50 warm >= 0.9x MostPop") in health, model
    mostpop = next(m for m in record["metrics"] if m["model"] == "MostPop" and m["metric"] == METRIC["warm"])
    floor = health[("Embed", "Recall@50 warm >= 0.9x MostPop")]["floor"]
    assert floor == pytest.approx(0.9 * mostpop["value"] / 100, rel=1e-9)
    assert set(record["learning_curves"]) == {"GRU-MTL", "GRU", "Embed-MTL", "Embed"}
    for curves in record["learning_curves"].values():
        for c in curves.values():
            assert 1 <= c["epochs"] <= 3 and c["valid_metric"] == "Recall@50"
    assert not [n for n in record["notes"] if "crashed" in n or "missing" in n]
    sal = record["tables"]["saliency"]
    assert sal and all(len(r["words"]) == len(r["saliency"]) and min(r["saliency"]) >= 0 for r in sal)
    assert {"figure3", "figure2", "learning_curves"} <= set(record["artifacts"])
    assert record["data_files"]


def test_smoke_golden_values(record):
    """Seeded CPU smoke run: the main model's and the floors' recorded values (regenerate only on purpose)."""
    rows = {(m["model"], m["metric"]): m["value"] for m in record["metrics"]}
    for key, value in GOLDEN.items():
        assert rows[key] == pytest.approx(value, abs=1e-6), key


#: from the smoke run of this commit's code (n_threads=1, seed 2024); regenerated after the encoder's length
#: buckets encode each distinct item once per update (duplicates share one dropout draw), which moves GRU and Embed
GOLDEN: dict[tuple[str, str], float] = {
    ("GRU-MTL", "Recall@50 warm (%)"): 40.69146700294241,
    ("GRU-MTL", "HR@10 warm"): 0.12345523329129887,
    ("GRU-MTL", "Tag Recall@50 cold (%)"): 65.1074328322701,
    ("GRU", "Recall@50 warm (%)"): 41.59100462379151,
    ("Embed", "Recall@50 warm (%)"): 41.185372005044144,
    ("CTR", "Recall@50 warm (%)"): 45.78604455653636,
    ("MostPop", "Recall@50 warm (%)"): 44.55023118957545,
}
