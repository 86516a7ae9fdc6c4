"""MVAE protocol and report: resuming an interrupted run, and claims decided through ClaimJudge."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from xrec_core import health
from xrec_core.experiments.mvae import MVAE_MODELS, NEURAL_BASELINES, RETRIEVAL, RETRIEVALS, TABLE2_METRICS, MVAEConfig
from xrec_core.experiments.mvae import protocol, report
from xrec_core.experiments.mvae.data import _finalise
from xrec_core.records import RunRecorder

torch.set_num_threads(1)
DATASET = "amazon2014-instruments"


# ============================================================================ interrupt and resume
def _explanations(n: int = 240, seed: int = 0):
    """Users and items with a few sentence templates each, so that models can learn something."""
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, 25, n), rng.integers(0, 15, n)
    words = ["sound", "strap", "cable", "price", "tone"]
    tokens = [["the", words[i % 5], "is", "great" if u % 2 else "bad"] for u, i in zip(users, items)]
    df = pd.DataFrame({"user": users.astype(str), "item": items.astype(str), "rating": rng.integers(1, 6, n).astype(float),
                       "tokens": tokens, "feature": [t[1] for t in tokens]})
    df["explanation"] = df["tokens"].map(" ".join)
    return _finalise(df, words, "synthetic")


def _cfg(results_dir) -> MVAEConfig:
    return MVAEConfig.from_scale("smoke", device="cpu", models="NRT,MVAE", max_epochs=2, d_model=24, n_heads=2, n_rd=1,
                                 nrt_d_emb=16, nrt_d_hidden=16, batch_size=32, meteor_max_pairs=5, results_dir=str(results_dir))


def test_an_interrupted_split_resumes_with_only_the_missing_units(tmp_path, monkeypatch):
    exp = _explanations()
    built: list[str] = []
    real_build = protocol.build_generator

    def counting_build(name, *args, **kwargs):
        built.append(name)
        if fail_at is not None and len(built) == fail_at:
            raise KeyboardInterrupt(f"interrupted while building {name}")
        return real_build(name, *args, **kwargs)

    monkeypatch.setattr(protocol, "build_generator", counting_build)
    cfg = _cfg(tmp_path / "interrupted")
    fail_at = 2  # NRT finishes and is stored; the run dies when MVAE starts
    with pytest.raises(KeyboardInterrupt):
        protocol.run_split(exp, 0, cfg, protocol.unit_store(cfg))
    assert built == ["NRT", "MVAE"]
    built.clear()
    fail_at = None
    resumed = protocol.run_split(exp, 0, cfg, protocol.unit_store(cfg))
    assert built == ["MVAE"]  # only the unit that had not finished is computed again

    built.clear()
    fresh_cfg = _cfg(tmp_path / "fresh")
    fresh = protocol.run_split(exp, 0, fresh_cfg, protocol.unit_store(fresh_cfg))
    assert built == ["NRT", "MVAE"]
    assert set(resumed["models"]) == {*RETRIEVALS, "NRT", "MVAE"}

    def record(split, cfg):
        rec = RunRecorder("mvae", config=cfg, scale="smoke", dataset=DATASET, seed=cfg.seed, results_dir=cfg.results_dir)
        report.judge_claims(rec, [split], [], [], report.metric_rows([split], DATASET), DATASET)
        rec.add_metrics(report.metric_rows([split], DATASET))
        rec.add_health(report.health_checks([split], [], DATASET))
        return rec.as_dict()

    a, b = record(resumed, cfg), record(fresh, fresh_cfg)
    assert a["metrics"] == b["metrics"] and a["health"] == b["health"] and a["claims"] == b["claims"]


# ============================================================================ claims
def _fake_splits(n_splits: int, models=(RETRIEVAL, *NEURAL_BASELINES, *MVAE_MODELS), seed: int = 0) -> list[dict]:
    """Splits in which MVAE is 5 points above every other model on every metric (small noise)."""
    rng = np.random.default_rng(seed)
    splits = []
    for k in range(n_splits):
        out = {}
        for name in models:
            level = 20.0 if name == "MVAE" else 15.0
            metrics = {m: level + 0.1 * rng.standard_normal() for m in (*TABLE2_METRICS, "FMR", "FCR", "DIV", "USR")}
            nll = {"MVAE": (3.0, 4.0), "MVAE-NoKL": (2.5, 4.5), "MVAE-NoRN": (3.5, 4.6)}.get(name, (3.2, 4.2))
            curve = {"train_loss": [5.0, 4.0, 3.5], "valid": [5.0, nll[1] + 0.01 * k, nll[1] + 0.5], "valid_epochs": [1, 2, 3],
                     "best_epoch": 2, "stopped_early": True} if name != RETRIEVAL else {}
            out[name] = {"metrics": metrics, "hypotheses": [[f"w{j}", name] for j in range(10)], "curve": curve,
                         "train_nll": [4.0, nll[0] + 0.01 * k, nll[0]] if curve else []}
        splits.append({"split": k, "models": out})
    return splits


def _judge(splits, unhealthy=(), gains=None, fig4=None):
    rec = RunRecorder("mvae", config={}, scale="smoke", dataset=DATASET, seed=0)
    rec.add_health([health.HealthCheck(m, DATASET, "unique-sentence ratio", 0.0, 0.01, False) for m in unhealthy])
    n = len(splits)
    gains = gains if gains is not None else [{"BLEU-1 gain by count bin": [5.0, 4.0, 3.0 + 0.1 * k, 2.0, 1.0],
                                              "ROUGE-L gain by count bin": [5.0, 4.5, 4.0, 3.5 + 0.1 * k, 3.0]} for k in range(n)]
    fig4 = fig4 if fig4 is not None else [{"by_count_bin": [0.5, 0.6, 0.7 + 0.01 * k, 0.8, float("nan")]} for k in range(n)]
    report.judge_claims(rec, splits, gains, fig4, report.metric_rows(splits, DATASET), DATASET)
    return {c.claim: c for c in rec.claims}


def test_claims_hold_on_clear_paired_wins_and_trends():
    claims = _judge(_fake_splits(3))
    assert all(c.verdict == "holds" for c in claims.values()), [(c.claim, c.evidence) for c in claims.values() if c.verdict != "holds"]
    assert len(claims) == 9 + 2 + 5 + 3 + 2 + 1
    c = claims["MVAE outperforms NRT, Att2Seq, NETE and PETER on BLEU-1"]
    assert c.models == ["MVAE", *NEURAL_BASELINES] and "3 splits, paired t-test" in c.evidence
    assert "slope" in claims["The two copies of a user become more similar the more training examples the user has"].evidence


def test_a_reversed_trend_fails():
    splits = _fake_splits(3)
    rising = [{"BLEU-1 gain by count bin": [1.0, 2.0, 3.0 + 0.1 * k, 4.0, 5.0],
               "ROUGE-L gain by count bin": [1.0, 2.0, 3.0, 4.0 + 0.1 * k, 5.0]} for k in range(3)]
    claims = _judge(splits, gains=rising)
    assert claims["MVAE's BLEU-1 gain over PETER is larger for users with fewer training samples"].verdict == "fails"


def test_one_split_makes_every_claim_untestable():
    claims = _judge(_fake_splits(1))
    assert {c.verdict for c in claims.values()} == {"untestable"}
    assert "1 split: no test is possible" in claims["MVAE outperforms MVAE-NoKL and MVAE-NoMLF on BLEU-1"].evidence


def test_missing_or_unhealthy_comparator_makes_its_claims_untestable():
    no_peter = _fake_splits(3, models=(RETRIEVAL, "NRT", "Att2Seq", "NETE", *MVAE_MODELS))
    claims = _judge(no_peter)
    c = claims["MVAE outperforms NRT, Att2Seq, NETE and PETER on ROUGE-L-F"]
    assert c.verdict == "untestable" and "not run or crashed: PETER" in c.evidence
    assert claims["MVAE's ROUGE-L gain over PETER is larger for users with fewer training samples"].verdict == "untestable"
    assert claims["MVAE outperforms MVAE-NoKL and MVAE-NoMLF on METEOR"].verdict == "holds"  # PETER is not named there

    sick = _judge(_fake_splits(3), unhealthy=["MVAE-NoKL"])
    assert sick["MVAE reaches a lower validation NLL than MVAE-NoKL"].verdict == "untestable"
    assert "failed its training-health check: MVAE-NoKL" in sick["MVAE outperforms MVAE-NoKL and MVAE-NoMLF on BLEU-4"].evidence
    assert sick["MVAE reaches a lower validation NLL than MVAE-NoRN"].verdict == "holds"


def test_health_flags_a_one_sentence_generator_and_keeps_the_split():
    splits = _fake_splits(2)
    splits[1]["models"]["PETER"]["hypotheses"] = [["this", "is", "great"]] * 200
    checks = report.health_checks(splits, [{"curve": {"train_loss": [3.0, 2.0]}}], DATASET)
    failed = [c for c in checks if not c.passed]
    assert [(c.model, c.check) for c in failed] == [("PETER", "unique-sentence ratio")]
    assert failed[0].detail.startswith("split 1: 1 distinct of 200")
    models = {c.model for c in checks}
    assert {RETRIEVAL, report.FIG4_MODEL, *NEURAL_BASELINES, *MVAE_MODELS} <= models
    table = report.health_table([c.as_dict() for c in checks]).set_index(["model", "check"])
    assert table.loc[("PETER", "unique-sentence ratio"), "status"] == "FAILED"
    assert report.health_table([])["health"][0].startswith("no health checks (record predates them")


def test_a_crashing_baseline_is_recorded_and_its_claims_are_untestable(tmp_path, monkeypatch):
    real_build = protocol.build_generator

    def build(name, *args, **kwargs):
        if name == "NRT":
            raise RuntimeError("out of memory")
        return real_build(name, *args, **kwargs)

    monkeypatch.setattr(protocol, "build_generator", build)
    cfg = MVAEConfig.from_scale("smoke", device="cpu", models="NRT", meteor_max_pairs=5, results_dir=str(tmp_path))
    exp = _explanations()
    split = protocol.run_split(exp, 0, cfg, protocol.unit_store(cfg))
    assert split["crashed"] == {"NRT": "RuntimeError: out of memory"} and set(split["models"]) == set(RETRIEVALS)
    rec = RunRecorder("mvae", config=cfg, scale="smoke", dataset=DATASET, seed=cfg.seed, results_dir=str(tmp_path))
    report.record_run(rec, exp, [split], [], cfg)
    assert "NRT crashed on split 0: RuntimeError: out of memory" in rec.notes
    missing = next(n for n in rec.notes if n.startswith("rows missing"))
    assert "NRT" in missing and "PETER" in missing and not any(r in missing for r in RETRIEVALS)
    table2 = [c for c in rec.claims if c.source == "Table 2 / Sec. 4.6"]
    # MVAE did not run either (models="NRT"): the evidence names every absent model, NRT first
    assert table2 and all(c.verdict == "untestable" and c.evidence.startswith("not run or crashed: MVAE, NRT,") for c in table2)


def test_tuning_uses_the_registry_space_and_runs_read_the_best_params(tmp_path, monkeypatch):
    from xrec_core.experiments.mvae import tuning

    exp = _explanations()
    monkeypatch.setattr(tuning, "load_explanations", lambda cfg: (exp, []))
    cfg = MVAEConfig.from_scale("smoke", device="cpu", models="NRT", max_epochs=1, nrt_d_emb=16, results_dir=str(tmp_path))
    result = tuning.tune_models(cfg, None, 2)["NRT"]
    assert result.n_trials_done == 2 and set(result.best_params) == {"lr", "dropout", "d_hidden", "rating_reg"}
    assert tuning.stored_best_params(cfg) == {"NRT": result.best_params}
    rec = RunRecorder("mvae", config=cfg, scale="smoke", dataset=DATASET, seed=0, results_dir=str(tmp_path))
    tuning.record_tuning(rec, cfg, tuning.stored_best_params(cfg))
    assert rec.tuning["NRT"]["trials_complete"] == 2 and not rec.notes
    assert protocol.unit_key(0, "NRT", result.best_params).startswith("split0/NRT@")  # tuned units never reuse untuned ones
