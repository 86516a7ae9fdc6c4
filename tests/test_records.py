"""Run records, atomic writes, resumable units, configs and the paper-number comparison."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import pandas as pd
import pytest

from xrec_core import records as rec_mod
from xrec_core.config import ConfigError, ExperimentConfig
from xrec_core.records import Claim, MetricRow, RunRecorder, UnitStore, atomic_write_json, load_records
from xrec_core.reference import compare, load_reference, verdict


@dataclass
class ToyConfig(ExperimentConfig):
    k: int = 10
    lr: float = 0.01
    SCALES: ClassVar = {"paper": {}, "smoke": {"k": 2}}


def test_metric_row_mean_and_sample_std_match_numpy():
    vals = [0.81, 0.77, 0.92, 0.85]
    row = MetricRow.from_values("Table 2", "toy", "M", "MSE", vals)
    assert row.value == pytest.approx(np.mean(vals))
    assert row.std == pytest.approx(np.std(vals, ddof=1))
    assert row.n == 4


def test_record_has_provenance_and_is_written_atomically(tmp_path, monkeypatch):
    data = tmp_path / "d" / "file.txt"
    data.parent.mkdir()
    data.write_text("hello")
    cfg = ToyConfig.from_scale("smoke", dataset="toy", seed=3)
    r = RunRecorder("toy", config=cfg, scale="smoke", dataset="toy", seed=3, results_dir=tmp_path / "res")
    r.add_data_files([data])
    r.add_metric(MetricRow.from_values("Table 1", "toy", "M", "RMSE", [1.0, 2.0], compare_to="toy"))
    r.add_claim(Claim("M beats N", "Table 1", True, "1.5 < 2"))
    r.add_curve("loss", {"x": [0, 1], "y": [2.0, 1.0]})
    path = r.finish()
    saved = json.loads(path.read_text())
    assert saved["config"]["k"] == 2 and saved["seed"] == 3
    assert saved["data_files"] == {"d/file.txt": {"sha256": "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824", "bytes": 5, "verified": False}}
    for key in ("code_version", "packages", "hardware", "wall_time_s", "started_at"):
        assert key in saved
    assert saved["packages"]["numpy"] == np.__version__
    assert not list(path.parent.glob(".*.tmp"))
    assert [x["paper"] for x in load_records(tmp_path / "res")] == ["toy"]


def test_atomic_write_keeps_old_file_when_interrupted(tmp_path, monkeypatch):
    target = tmp_path / "r.json"
    atomic_write_json(target, {"v": 1})

    def boom(*_a, **_k):
        raise KeyboardInterrupt

    monkeypatch.setattr(rec_mod.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        atomic_write_json(target, {"v": 2})
    assert json.loads(target.read_text()) == {"v": 1}
    assert list(tmp_path.iterdir()) == [target]


def test_record_refuses_nan_metric(tmp_path):
    r = RunRecorder("toy", config={"a": 1}, scale="smoke", dataset="toy", seed=0, results_dir=tmp_path)
    r.add_metric(MetricRow("T", "toy", "M", "MSE", float("nan")))
    with pytest.raises(ValueError, match="no finite value"):
        r.finish()


def test_unit_store_resumes_and_invalidates_on_config_change(tmp_path):
    calls = []

    def work():
        calls.append(1)
        return {"mse": 0.5}

    store = UnitStore(tmp_path, {"k": 1})
    assert store.run("fold0/MF", work) == {"mse": 0.5}
    assert UnitStore(tmp_path, {"k": 1}).run("fold0/MF", work) == {"mse": 0.5}
    assert len(calls) == 1  # resumed, not recomputed
    UnitStore(tmp_path, {"k": 2}).run("fold0/MF", work)
    assert len(calls) == 2  # a different config never reuses a stale unit


def test_config_validation_lists_valid_names():
    assert ToyConfig.from_scale("smoke", dataset="toy").k == 2
    with pytest.raises(ConfigError, match="valid: paper, smoke"):
        ToyConfig.from_scale("huge", dataset="toy")
    with pytest.raises(ConfigError, match=r"Unknown parameter\(s\) kk .*valid: .*k, lr"):
        ToyConfig.from_scale("smoke", dataset="toy", kk=3)
    # a config that requires fields checks the dataset against the registry and the data folder
    RatedToy = type("RatedToy", (ToyConfig,), {"REQUIRES": ("rating",)})
    with pytest.raises(ConfigError, match="Unknown dataset 'nope'.*valid: amazon2014-instruments"):
        RatedToy.from_scale("smoke", dataset="nope")


@pytest.mark.parametrize(
    "values,paper,same,scale,expected",
    [
        ([1.01, 0.99, 1.02, 0.98], 1.00, True, "full", "reproduced"),       # inside the 95% t-interval
        ([1.01, 0.99, 1.02, 0.98], 1.045, True, "full", "partly"),          # outside 95%, inside 99.9%
        ([1.01, 0.99, 1.02, 0.98], 1.30, True, "full", "not reproduced"),
        ([1.30], 1.30, True, "full", "reproduced"),                          # one unit: only an equal value
        ([1.31], 1.30, True, "full", "not reproduced"),
        ([1.00, 1.01], 1.00, False, "full", "not testable here"),
        ([1.00, 1.01], 1.00, True, "smoke", "smoke scale (not a reproduction)"),
    ],
)
def test_verdict_rules(values, paper, same, scale, expected):
    from scipy import stats

    got = verdict(values, paper, same_data=same, scale=scale, metric="MSE")
    assert got == expected
    if expected in ("reproduced", "partly") and len(values) > 1:  # independent check of the interval
        half = stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / np.sqrt(len(values))
        assert (abs(paper - np.mean(values)) <= half) == (expected == "reproduced")


def test_compare_joins_on_paper_dataset_and_computes_gap():
    ref = pd.DataFrame([{"paper": "toy", "table": "Table 2", "dataset": "Yelp", "model": "M", "metric": "MSE", "value": 1.2, "note": ""}])
    record = {"paper": "toy", "scale": "full", "seed": 0, "metrics": [
        {"table": "Table 2", "dataset": "Yelp", "model": "M", "metric": "MSE", "value": 1.25, "std": 0.07, "n": 3,
         "values": [1.18, 1.25, 1.32], "compare_to": "Yelp"},
        {"table": "Table 2", "dataset": "Beauty", "model": "M", "metric": "MSE", "value": 0.9, "std": 0.01, "n": 10, "compare_to": "Yelp"},
        {"table": "Table 2", "dataset": "Yelp", "model": "Mean", "metric": "MSE", "value": 1.5, "std": 0.01, "n": 10, "compare_to": None},
    ]}
    df = compare([record], ref)
    assert df["gap"].iloc[0] == pytest.approx(0.05)
    assert list(df["verdict"]) == ["reproduced", "not testable here", "no paper number"]


def test_reference_file_is_well_formed():
    ref = load_reference()
    assert set(ref.columns) >= {"paper", "table", "dataset", "model", "metric", "value", "note"}
    assert ref["paper"].isin(["mt", "semax", "gru", "mvae", "nar"]).all()
    # a missing number must say why
    assert (ref["value"].notna() | (ref["note"].str.len() > 0)).all()


def test_artifacts_are_stored_relative_to_the_repository(tmp_path):
    from xrec_core.paths import REPO_ROOT
    from xrec_core.records import artifact_path, portable_path

    inside = REPO_ROOT / "results" / "x" / "figure.png"
    assert portable_path(inside) == "results/x/figure.png"
    assert artifact_path("results/x/figure.png") == inside
    outside = tmp_path / "figure.png"
    assert portable_path(outside) == str(outside.resolve())
    assert artifact_path(str(outside)) == outside


def test_config_paths_inside_the_repository_are_recorded_relative(tmp_path):
    from xrec_core.paths import REPO_ROOT
    from xrec_core.records import RunRecorder

    config = {"results_dir": str(REPO_ROOT / "results"), "cache": str(tmp_path), "k": 5, "name": "abc"}
    rec = RunRecorder("x", config=config, scale="smoke", dataset="d", seed=0, results_dir=tmp_path)
    assert rec.config == {"results_dir": "results", "cache": str(tmp_path), "k": 5, "name": "abc"}


def test_a_resumed_run_still_records_what_its_units_cost(tmp_path):
    import time as _time

    def work():
        _time.sleep(0.05)  # wall time, no CPU time
        cpu0 = _time.process_time()
        while _time.process_time() - cpu0 < 0.05:  # CPU time
            pass
        return 1

    first = RunRecorder("mt", config={}, scale="smoke", dataset="d", seed=0, results_dir=tmp_path / "r")
    UnitStore(tmp_path / "u", {"k": 1}).run("a", work)
    done = first.as_dict()
    cost, cpu = done["units_compute_s"], done["units_cpu_s"]
    assert cost >= 0.1
    assert 0.05 <= cpu <= cost - 0.04  # the sleep counts in the wall time only
    assert done["cpu_time_s"] >= cpu and (done["units_untimed"], done["units_cpu_untimed"]) == (0, 0)
    resumed = RunRecorder("mt", config={}, scale="smoke", dataset="d", seed=0, results_dir=tmp_path / "r")
    t0 = _time.perf_counter()
    UnitStore(tmp_path / "u", {"k": 1}).run("a", work)  # loaded, not recomputed
    assert _time.perf_counter() - t0 < 0.05
    again = resumed.as_dict()
    assert again["units_compute_s"] == pytest.approx(cost, abs=1e-3)
    assert again["units_cpu_s"] == pytest.approx(cpu, abs=1e-3)
    assert again["cpu_time_s"] < 0.05  # loading the unit cost next to nothing


def test_a_unit_stored_without_its_cpu_time_is_counted_as_untimed(tmp_path):
    store = UnitStore(tmp_path / "u", {"k": 1})
    store.save("old", 7, elapsed_s=2.0)  # as units stored before CPU time was recorded
    rec = RunRecorder("mt", config={}, scale="smoke", dataset="d", seed=0, results_dir=tmp_path / "r")
    assert store.run("old", lambda: 0) == 7
    done = rec.as_dict()
    assert (done["units_compute_s"], done["units_cpu_s"], done["units_untimed"], done["units_cpu_untimed"]) == (2.0, 0.0, 0, 1)


def test_scorecard_marks_published_numbers_on_absent_data_not_testable():
    from xrec_core.report import scorecard

    record = {"paper": "nar", "scale": "full", "dataset": "amazon2014-instruments", "seed": 1, "_path": "x.json",
              "metrics": [{"table": "Table 4", "dataset": "amazon2014-instruments", "model": "CAR", "metric": "NDCG",
                           "value": 0.25, "std": 0.01, "n": 3, "values": [0.24, 0.25, 0.26],
                           "compare_to": "amazon2014-instruments"}]}
    card = scorecard([record], absent={"amazon2014-clothing"})
    clothing = card[card["paper_dataset"] == "amazon2014-clothing"]
    video = card[card["paper_dataset"] == "amazon2014-instantvideo"]
    assert len(clothing) and (clothing["verdict"] == "not testable here").all()
    assert len(video) and (video["verdict"] == "not run").all()
    ran = card[(card["paper_dataset"] == "amazon2014-instruments") & (card["model"] == "CAR") & (card["metric"] == "NDCG")]
    # 0.2538 lies inside the 95% t-interval of [0.24, 0.25, 0.26] (0.25 +- 0.0248)
    assert ran["ours"].iloc[0] == 0.25 and ran["verdict"].iloc[0] == "reproduced"
    assert ran["health"].iloc[0] == "not checked"


def test_units_resume_on_another_clone_and_smoke_units_stay_out_of_git(tmp_path):
    import subprocess

    from xrec_core.paths import REPO_ROOT, units_root
    from xrec_core.records import UnitStore

    config = {"k": 8, "seed": 1, "data_dir": "/a/data", "results_dir": "/a/results"}
    moved = config | {"data_dir": "/b/data", "results_dir": "/b/results"}
    assert UnitStore(tmp_path, config).fingerprint == UnitStore(tmp_path, moved).fingerprint
    assert UnitStore(tmp_path, config).fingerprint != UnitStore(tmp_path, config | {"k": 9}).fingerprint

    assert units_root(tmp_path, "mt", "full", "amazon2014-instruments") == tmp_path / "mt" / "units" / "full__amazon2014-instruments"
    if not (REPO_ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    ignored = subprocess.run(["git", "check-ignore", "--no-index", "-q", "results/mt/units/smoke__x/abc/fold0.json"], cwd=REPO_ROOT)
    kept = subprocess.run(["git", "check-ignore", "--no-index", "-q", "results/mt/units/full__x/abc/fold0.json"], cwd=REPO_ROOT)
    weights = subprocess.run(["git", "check-ignore", "--no-index", "-q", "results/semax/units/full__x/abc/SEMAX__seed1.pt"], cwd=REPO_ROOT)
    assert (ignored.returncode, kept.returncode, weights.returncode) == (0, 1, 0)


def test_atomic_writes_get_the_permissions_of_an_ordinary_file(tmp_path):
    import os

    from xrec_core.records import _UMASK, atomic_write_json

    path = atomic_write_json(tmp_path / "record.json", {"a": 1})
    assert path.stat().st_mode & 0o777 == 0o666 & ~_UMASK
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    assert os.path.getsize(path) > 0


def test_claims_of_records_without_health_checks_count_as_untestable():
    from xrec_core.report import claims_table, glance_markdown, scorecard

    old = {"paper": "mt", "scale": "full", "dataset": "d", "seed": 0, "_path": "old.json", "metrics": [],
           "claims": [{"claim": "MT beats PMF", "source": "T2", "holds": True, "evidence": "p=0.01"}]}
    new = {"paper": "nar", "scale": "full", "dataset": "d", "seed": 0, "_path": "new.json", "metrics": [],
           "health": [{"model": "CAR", "dataset": "d", "check": "NDCG >= 0.9x MostPop", "value": 0.1, "floor": 0.2,
                       "passed": False, "detail": ""}],
           "claims": [{"claim": "CAR beats CER", "source": "T4", "holds": None, "verdict": "untestable", "evidence": "x"},
                      {"claim": "CNR beats CER", "source": "T4", "holds": False, "verdict": "fails", "evidence": "y"}]}
    table = claims_table([old, new])
    assert list(table["verdict"]) == ["untestable", "untestable", "fails"]
    assert table["evidence"].iloc[0].startswith("record predates the training-health checks") and "holds" in table["evidence"].iloc[0]
    glance = glance_markdown(scorecard([old, new]), table)
    assert "claims: holds" in glance and "claims: untestable" in glance


def test_dataset_slugs_are_stable_distinct_and_file_safe(tmp_path):
    """One naming scheme for records, units and figures: registry names as they are, paths by stem + hash."""
    import re
    from pathlib import Path

    from xrec_core.data import DATASETS
    from xrec_core.experiments.common import figures_dir, units_dir
    from xrec_core.records import dataset_slug

    # every registry name, and the names under the committed results/, stay as they are
    for name in DATASETS:
        assert dataset_slug(name) == name
    committed = {p.name.split("__", 1)[1] for p in Path(rec_mod.REPO_ROOT, "results").glob("*/units/*__*")}
    assert committed and all(dataset_slug(name) == name for name in committed)
    a, b = tmp_path / "a" / "reviews.json.gz", tmp_path / "b" / "reviews.json.gz"
    slugs = {dataset_slug(str(p)) for p in (a, b)}
    assert len(slugs) == 2 and all(re.fullmatch(r"reviews-[0-9a-f]{8}", s) for s in slugs)
    assert dataset_slug(str(a)) == dataset_slug(str(a)) == dataset_slug(a)
    assert dataset_slug("my data/with spaces.csv") != dataset_slug("my data/with-spaces.csv")
    assert re.fullmatch(r"[A-Za-z0-9._-]+", dataset_slug("../odd name/x y.csv"))
    # the record, the unit folder and the figure folder of a run use the same slug

    @dataclass
    class Cfg:
        dataset: str
        scale: str = "smoke"
        results_dir: str = str(tmp_path / "results")

    cfg = Cfg(str(a))
    rec = RunRecorder("demo", config={}, scale="smoke", dataset=str(a), seed=1, results_dir=cfg.results_dir)
    slug = dataset_slug(str(a))
    assert rec.name == f"demo__smoke__{slug}__seed1"
    assert units_dir("demo", cfg).name == f"smoke__{slug}" and figures_dir("demo", cfg).name == f"smoke__{slug}"
