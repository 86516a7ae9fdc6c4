"""Tests of the SEMAX chapter's protocol: temporal split, leakage, vocabulary, tables, bins, claims."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch

from xrec_core.config import ConfigError
from xrec_core.experiments import semax as X

torch.set_num_threads(1)


def fixture_reviews(fixtures_dir, name="reviews_mini_2014.json") -> pd.DataFrame:
    """The fixture in the loader's column format (2014 and 2018 field names both map here)."""
    rows = [json.loads(line) for line in (fixtures_dir / "semax" / name).read_text().splitlines() if line.strip()]
    return pd.DataFrame({"user": [r["reviewerID"] for r in rows], "item": [r["asin"] for r in rows],
                         "rating": [float(r["overall"]) for r in rows], "time": [int(r["unixReviewTime"]) for r in rows],
                         "text": [r.get("reviewText", "") for r in rows], "summary": [r.get("summary", "") for r in rows]})


def tiny_cfg(**kw):
    base = dict(dataset="amazon2014-instruments", min_word_freq=2, max_review_len=8, max_history=3, train_frac=0.75,
                valid_frac=0.25)
    base.update(kw)
    return X.SemaxConfig.from_scale("smoke", **base)


def test_config_scales_and_errors():
    cfg = X.SemaxConfig.from_scale("paper")
    assert cfg.beta == 0.4 and cfg.train_frac == 0.8 and cfg.min_word_freq == 10 and cfg.models == X.PAPER_MODELS
    assert X.SemaxConfig.from_scale("full").n_seeds >= 3
    with pytest.raises(ConfigError, match="Unknown scale"):
        X.SemaxConfig.from_scale("huge")
    with pytest.raises(ConfigError, match="Unknown dataset"):
        X.SemaxConfig.from_scale("smoke", dataset="movielens")
    with pytest.raises(ConfigError, match="Unknown model"):
        X.SemaxConfig.from_scale("smoke", models=("SEMAX", "BERT4Rec"))
    with pytest.raises(ConfigError, match="beta"):
        X.SemaxConfig.from_scale("smoke", beta_grid=(0.2, 1.2))
    assert X.SemaxConfig.from_scale("smoke", dataset="yelp-open").paper_dataset == "Yelp"


def test_temporal_parts():
    fit, valid, test = X.temporal_parts(np.arange(100), 0.8, 0.1)
    assert (len(fit), len(valid), len(test)) == (72, 8, 20)
    assert fit.max() < valid.min() and valid.max() < test.min()
    with pytest.raises(ValueError, match="sorted"):
        X.temporal_parts(np.array([3, 1, 2]), 0.8, 0.1)
    with pytest.raises(ValueError, match="too few"):
        X.temporal_parts(np.arange(2), 0.8, 0.5)


def test_prepare_fixture_split_vocab_and_histories(fixtures_dir):
    from xrec_core.data.text import tokenize

    df = fixture_reviews(fixtures_dir)
    cfg = tiny_cfg()
    data = X.prepare_reviews(df.sample(frac=1.0, random_state=0), cfg)  # input order must not matter
    times = data.reviews["time"].to_numpy()
    assert (np.diff(times) >= 0).all()
    assert (len(data.fit_idx), len(data.valid_idx), len(data.test_idx)) == (7, 2, 3)
    # vocabulary: words with >= 2 occurrences in the 9 training-period reviews only
    counts = Counter(w for t in data.reviews["text"].iloc[:9] for w in tokenize(t))
    for w, n in counts.items():
        assert (data.vocab.encode([w])[0] != data.vocab.unk_id) == (n >= 2), w
    test_only = set(w for t in data.reviews["text"].iloc[9:] for w in tokenize(t)) - set(counts)
    assert all(data.vocab.encode([w])[0] == data.vocab.unk_id for w in test_only)
    # hand-checked histories: user A1's review of B03 (6 Jan) sees A1's reviews of 1 and 2 Jan
    r = data.reviews
    i = int(np.flatnonzero((r["user"] == "A1") & (r["item"] == "B03"))[0])
    hist = [j for j in data.corpus.user_hist[i] if j >= 0]
    assert [(r["item"].iloc[j]) for j in hist] == ["B01", "B02"]
    # item B01's review by A3 (5 Jan) sees A1 (1 Jan) and A2 (2 Jan), not A4's (9 Jan)
    i = int(np.flatnonzero((r["user"] == "A3") & (r["item"] == "B01"))[0])
    assert [r["user"].iloc[j] for j in data.corpus.item_hist[i] if j >= 0] == ["A1", "A2"]
    # the empty review text is still one <UNK> token
    j = int(np.flatnonzero(r["text"] == "")[0])
    assert data.corpus.lengths[j] == 1 and data.corpus.tokens[j, 0] == data.vocab.unk_id


def assert_no_temporal_leakage(data: X.SemaxData) -> None:
    c = data.corpus
    n_train = len(data.fit_idx) + len(data.valid_idx)
    train_set = set(range(n_train))
    assert set(data.train_idx.tolist()) == train_set and data.test_idx.min() == n_train
    t_last_train = c.times[n_train - 1]
    assert (c.times[data.test_idx] >= t_last_train).all()
    for hist in (c.user_hist, c.item_hist):
        valid = hist >= 0
        rows = np.nonzero(valid)[0]
        j = hist[valid]
        assert (c.times[j] < c.times[rows]).all(), "a history holds a review that is not strictly earlier"
        assert (j != rows).all()
        in_train = rows < n_train
        assert (j[in_train] < n_train).all(), "a training example sees a test review"
        assert (c.times[j[in_train]] < c.times[rows[in_train]]).all()
    # entity consistency
    rows, cols = np.nonzero(c.user_hist >= 0)
    assert (c.users[c.user_hist[rows, cols]] == c.users[rows]).all()
    rows, cols = np.nonzero(c.item_hist >= 0)
    assert (c.items[c.item_hist[rows, cols]] == c.items[rows]).all()


def test_no_temporal_leakage_fixture(fixtures_dir):
    assert_no_temporal_leakage(X.prepare_reviews(fixture_reviews(fixtures_dir), tiny_cfg()))


@pytest.mark.parametrize("dataset", ["amazon2014-instruments", "amazon2018-giftcards"])
def test_no_temporal_leakage_real_data(data_dir, dataset):
    """No test review or its future is visible to a training example; histories strictly precede each rating."""
    cfg = X.SemaxConfig.from_scale("full", dataset=dataset, data_dir=str(data_dir))
    data = X.load_data(cfg)
    assert len(data.reviews) > 2000
    assert_no_temporal_leakage(data)
    n = len(data.reviews)
    assert len(data.test_idx) == n - int(round(0.8 * n))


def test_table3_and_bins_against_numpy():
    rng = np.random.default_rng(0)
    y = rng.integers(1, 6, 50).astype(float)
    preds = [y + rng.normal(0, s, 50) for s in (0.5, 0.7, 0.9)]
    runs = [{"MAE": float(np.mean(np.abs(p - y))), "RMSE": float(np.sqrt(np.mean((p - y) ** 2))), "pred": p.tolist()} for p in preds]
    tab = X.table3({"SEMAX": runs}).set_index("model")
    maes = [np.abs(p - y).mean() for p in preds]
    assert tab.loc["SEMAX", "MAE"] == pytest.approx(np.mean(maes), rel=1e-12)
    assert tab.loc["SEMAX", "MAE sd"] == pytest.approx(np.std(maes, ddof=1), rel=1e-12)
    assert tab.loc["SEMAX", "RMSE"] == pytest.approx(np.mean([np.sqrt(((p - y) ** 2).mean()) for p in preds]), rel=1e-12)
    counts = rng.integers(0, 30, 50)
    out = X.binned_errors(y, preds[0], counts, (0, 1, 3, 11))
    assert out["bin"] == ["0", "1-2", "3-10", ">=11"]
    assert sum(out["n"]) == 50
    for b, (lo, hi) in enumerate([(0, 1), (1, 3), (3, 11), (11, 10**9)]):
        sel = (counts >= lo) & (counts < hi)
        assert out["n"][b] == sel.sum()
        if sel.any():
            assert out["MAE"][b] == pytest.approx(np.abs(preds[0][sel] - y[sel]).mean(), rel=1e-12)
            assert out["RMSE"][b] == pytest.approx(np.sqrt(((preds[0][sel] - y[sel]) ** 2).mean()), rel=1e-12)


def _tab(values: dict[str, tuple[float, float]]) -> pd.DataFrame:
    return pd.DataFrame([{"model": m, "MAE": a, "RMSE": b, "n": 3} for m, (a, b) in values.items()])


def test_claims_follow_the_numbers():
    cfg = X.SemaxConfig.from_scale("smoke")
    paper_like = _tab({"NCF": (0.95, 1.20), "DeepCoNN": (0.90, 1.10), "TransNets": (0.86, 1.06), "TransNets-Ext": (0.85, 1.05),
                       "SEMA": (0.88, 1.08), "SEMAX": (0.765, 0.945), "Global mean": (0.99, 1.25)})
    fig6 = {"x": [0.1, 0.4, 0.9], "MAE": [0.8, 0.7, 0.9], "RMSE": [1.0, 0.9, 1.1]}
    claims = {c.claim: c.holds for c in X.paper_claims(cfg, paper_like, {}, fig6)}
    assert claims["SEMAX has the lowest MAE of the six models"] is True
    assert claims["NCF has the worst MAE and RMSE"] is True
    assert claims["SEMAX lowers the MAE and RMSE of TransNets-Ext by about 10% (we accept 5-15%)"] is True
    assert claims["TransNets-Ext is the second best model (on both metrics)"] is True
    assert claims["TransNets lowers DeepCoNN's MAE and RMSE by 2% to 7%"] is True
    assert claims["SEMAX's RMSE is lowest for beta near 0.4 (between 0.3 and 0.5)"] is True
    assert claims["SEMAX beats the simple baseline 'Global mean' (issue 9)"] is True
    flipped = _tab({"NCF": (0.80, 0.90), "DeepCoNN": (0.90, 1.10), "TransNets": (0.86, 1.06), "TransNets-Ext": (0.85, 1.05),
                    "SEMA": (0.84, 1.00), "SEMAX": (0.845, 1.01), "Global mean": (0.82, 0.95)})
    claims = {c.claim: c.holds for c in X.paper_claims(cfg, flipped, {}, {"x": [0.1, 0.4, 0.9], "MAE": [0.6, 0.7, 0.9], "RMSE": [1.0, 0.9, 0.8]})}
    assert claims["SEMAX has the lowest MAE of the six models"] is False
    assert claims["NCF has the worst MAE and RMSE"] is False
    assert claims["SEMAX improves on SEMA (multi-task learning helps)"] is False
    assert claims["SEMAX's MAE is lowest for beta near 0.4 (between 0.3 and 0.5)"] is False
    assert claims["SEMAX beats the simple baseline 'Global mean' (issue 9)"] is False
