"""Tests of the MT chapter's protocol (paper 000): config, folds, t-tests, records, a tiny end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from xrec_core.config import ConfigError
from xrec_core.data.sources import datasets_with
from xrec_core.experiments import mt
from xrec_core.records import RunRecorder


def test_config_scales_datasets_and_errors():
    cfg = mt.MTConfig.from_scale("smoke")
    assert cfg.dataset == "amazon2014-instruments" and cfg.n_folds == 10 and cfg.folds_run == 2
    assert cfg.paper_dataset == "amazon2014-electronics"
    assert mt.MTConfig.from_scale("paper", dataset="yelp2013").paper_dataset == "yelp2013"
    for name in ("yelp2013", "yelp2014", "amazon2014-electronics", "amazon2014-videogames", "amazon2014-grocery",
                 "amazon2018-allbeauty", "amazon2018-giftcards"):
        assert name in datasets_with(mt.MTConfig.REQUIRES)
    with pytest.raises(ConfigError, match="Unknown dataset"):
        mt.MTConfig.from_scale("smoke", dataset="movielens")
    with pytest.raises(ConfigError, match="folds_run"):
        mt.MTConfig.from_scale("smoke", folds_run=11)
    with pytest.raises(ConfigError, match="Unknown baseline"):
        mt.MTConfig.from_scale("smoke", lm_baselines=("GPT",))
    with pytest.raises(ConfigError, match="Unknown scale"):
        mt.MTConfig.from_scale("huge")


def test_paired_test_matches_the_closed_form_t_statistic():
    a = [0.90, 0.95, 0.88, 0.93]
    b = [1.00, 1.02, 0.97, 1.05]
    d = np.subtract(a, b)
    t = d.mean() / (d.std(ddof=1) / math.sqrt(len(d)))
    from scipy.stats import t as student

    assert mt.paired_test(a, b) == pytest.approx(2 * student.sf(abs(t), len(d) - 1), rel=1e-10)
    assert math.isnan(mt.paired_test([1.0], [2.0]))


def _fake_results(n_folds=3):
    rng = np.random.default_rng(0)
    folds = []
    for k in range(n_folds):
        folds.append({
            "fold": k, "n_train": 90, "n_test": 10, "lambda": 3.0,
            "MT": {"MSE": {"MT": 0.80 + 0.01 * k}, "perplexity": {"MT-U": 60.0, "MT-I": 58.0, "MT-P": 55.0 + k},
                   "tf-idf": {"MT-U": 0.04, "MT-I": 0.05, "MT-P": 0.06 + 0.001 * k},
                   "shuffled": {"user discriminator": 0.7, "item discriminator": 0.8 + 0.01 * k},
                   "history": [{"epoch": 1, "mf_loss": 1.0, "t_loss": 2.0, "g_loss": 0.1, "d_loss": 1.3}],
                   **({"fig3": {"P": {"step": [0, 5, 10], "accuracy": [0.5, 0.6, 0.7]}},
                       "examples": [{"user": "u", "item": "i", "ground truth": "good", "MT-P": "great"}]} if k == 0 else {})},
            "MT-encoder": 0.85 + 0.01 * k, "MT-decoder": 0.86 + 0.012 * k,
            "rating": {"PMF": 1.0 + rng.normal(0, 0.01), "Global mean": 0.84 + 0.01 * k, "User+item bias": 0.79 + 0.012 * k,
                       "Biased MF (tuned)": 0.78 + 0.011 * k},
            "text": {"perplexity": {"N-gram": 80.0 + k, "LSTM": 70.0 + 2 * k},
                     "tf-idf": {"N-gram": 0.01, "LSTM": 0.02 + 0.001 * k, "Opinosis": 0.03}},
        })
    return {"folds": folds}


def test_record_results_rows_claims_and_curves(tmp_path):
    cfg = mt.MTConfig.from_scale("smoke", results_dir=str(tmp_path))
    rec = RunRecorder("mt", config=cfg, scale="smoke", dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path)
    res = _fake_results()
    mt.record_results(rec, cfg, res)
    rows = {(m.table, m.model, m.metric): m for m in rec.metrics}
    row = rows[("Table 2", "MT", "MSE")]
    assert row.values == pytest.approx([0.80, 0.81, 0.82]) and row.value == pytest.approx(0.81)
    assert row.std == pytest.approx(0.01) and row.n == 3 and row.compare_to == "amazon2014-electronics"
    assert rows[("Table 2", "Global mean", "MSE")].compare_to is None
    assert rows[("Table 3", "MT-P", "perplexity")].value == pytest.approx(56.0)
    assert rows[("Table 4", "Opinosis", "tf-idf")].higher_is_better is True
    assert rows[("Sec. 4.3", "item discriminator", "accuracy")].value == pytest.approx(0.81)
    claims = {c.claim: c for c in rec.claims}
    # MT (0.80-0.82) vs the simple baselines: user+item bias (0.79-0.814) and tuned MF are lower -> claim fails
    simple = next(c for k, c in claims.items() if "simple baselines" in k)
    assert simple.holds is False and "Biased MF (tuned)" in simple.evidence
    ablation = next(c for k, c in claims.items() if "encoder or the decoder" in k)
    assert ablation.holds is True  # constant gaps -> p ~ 0
    ppl = next(c for k, c in claims.items() if "lowest perplexity of MT-U" in k)
    assert ppl.holds is True
    # a baseline missing on a fold is paired with MT on the folds both have
    del res["folds"][2]["rating"]["PMF"]
    rec2 = RunRecorder("mt", config=cfg, scale="smoke", dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path)
    mt.record_results(rec2, cfg, res)
    assert {(m.model, m.n) for m in rec2.metrics if m.metric == "MSE"} >= {("MT", 3), ("PMF", 2)}
    first = next(c for c in rec2.claims if "lower MSE than PMF" in c.claim)
    assert "2 common folds" in first.evidence
    cover = {(r["metric"], r["model"]): r["folds"] for r in rec2.tables["fold coverage"]}
    assert cover[("MSE", "PMF")] == [0, 1] and cover[("MSE", "MT")] == [0, 1, 2]
    assert rec.curves["Figure 3/MT-P"]["y"] == [0.5, 0.6, 0.7]
    assert rec.tables["Sec. 4.4 examples"][0]["MT-P"] == "great"
    # the record is valid JSON and the paper comparison joins the reference file
    path = rec.finish()
    saved = json.loads(path.read_text())
    cmp = mt.results_table(rec, "MSE")
    assert set(cmp["model"]) >= {"MT", "PMF", "Global mean"}
    assert cmp.loc[cmp["model"] == "MT", "paper_value"].iloc[0] == pytest.approx(1.018)
    assert len(saved["metrics"]) == len(rec.metrics)


def test_tiny_end_to_end_protocol_on_a_real_format_fixture(fixtures_dir, tmp_path):
    from xrec_core.data.amazon import parse_amazon_json

    df = parse_amazon_json(fixtures_dir / "mt" / "reviews_Musical_Instruments_5.sample.json")
    cfg = mt.MTConfig.from_scale("smoke", results_dir=str(tmp_path), n_folds=4, folds_run=2, max_reviews=0,
                                 rating_baselines=(), lm_baselines=("N-gram",), opinosis=False, min_word_freq=1,
                                 n_threads=1, fig3_steps=2, fig3_eval_every=1, batch_size=8, doc_sample=2,
                                 lambda_grid=(1.0, 3.0), device="cpu")
    corpus = mt.corpus_from_frame(df, cfg)
    assert len(corpus.tokens) == 40 and corpus.n_users == 8 and corpus.n_items == 6
    test_sets = [set(f.tolist()) for f in corpus.folds]
    assert sorted(set().union(*test_sets)) == list(range(40)) and sum(map(len, test_sets)) == 40
    fold = mt.fold_data(corpus, 0, cfg)
    assert not set(fold.test) & set(fold.train) and set(fold.valid) <= set(fold.train)
    t = fold.tensors
    # every review row ends with EOS and decodes back to its (truncated) tokens
    for r in range(5):
        assert mt.decode(t.tokens[r], fold.itos, t.eos_id, t.pad_id) == [
            w if w in fold.itos else "<UNK>" for w in corpus.tokens[r]]
    res = mt.run_protocol(cfg, corpus, progress=False)
    assert [f["fold"] for f in res["folds"]] == [0, 1]
    f0 = res["folds"][0]
    assert f0["lambda"] in (1.0, 3.0)
    assert set(f0["MT"]["perplexity"]) == {"MT-U", "MT-I", "MT-P"}
    assert all(0.0 <= v <= 1.0 for v in f0["MT"]["tf-idf"].values())
    assert f0["MT"]["fig3"]["P"]["step"] == [0, 1, 2]
    assert set(f0["text"]["perplexity"]) == {"N-gram"}
    if mt.available("simple"):
        # global-mean MSE recomputed independently from the fold's ratings
        tr, te = fold.train, fold.test
        want = np.mean((t.ratings[te] - t.ratings[tr].mean()) ** 2)
        assert f0["rating"]["Global mean"] == pytest.approx(want, rel=1e-9)
    else:
        assert res["missing"] == ["simple"]
    # a rerun resumes from the stored units and gives identical numbers
    again = mt.run_protocol(cfg, corpus, progress=False)
    assert again["folds"][0]["MT"]["MSE"] == f0["MT"]["MSE"]
    # one fold alone (another worker's share) reuses the same units; selection fields do not
    # change the units' fingerprint
    only = mt.run_protocol(mt.MTConfig.from_scale("smoke", **{**_overrides(cfg), "folds_run": 1}), corpus,
                           progress=False, folds=[1])
    assert only["folds"][0]["fold"] == 1 and only["folds"][0]["MT"] == res["folds"][1]["MT"]
    # finished_only assembles what exists and names the rest; nothing new is computed
    partial = mt.run_protocol(mt.MTConfig.from_scale("smoke", **{**_overrides(cfg), "folds_run": 3, "finished_only": True}),
                              corpus, progress=False)
    assert [f["fold"] for f in partial["folds"]] == [0, 1] and partial["unfinished"] == ["fold2/lambda"]


def _overrides(cfg):
    return {k: v for k, v in cfg.as_dict().items() if k != "scale"}


def test_describe_models_marks_what_runs():
    cfg = mt.MTConfig.from_scale("smoke", lm_baselines=("N-gram",), opinosis=False)
    df = mt.describe_models(cfg)
    assert isinstance(df, pd.DataFrame)
    run = dict(zip(df["model"], df["run here"]))
    assert run["MT"] and run["N-gram"] and not run["LSTM"] and not run["Opinosis"] and not run["JMARS"]
