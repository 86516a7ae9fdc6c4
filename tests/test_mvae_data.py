"""The MVAE explanation-dataset builder, splits and the Fig. 4/5 helpers on a hand-written fixture."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from xrec_core.data.splits import random_split
from xrec_core.experiments import mvae
from xrec_core.experiments.mvae import protocol
from xrec_core.experiments.mvae.data import (ExplanationData, _finalise, build_explanations, duplicate_half, explanation_stats,
                                             explanation_tokens, extract_features, from_peter, split_rows, split_sentences)


@pytest.fixture
def reviews(fixtures_dir) -> pd.DataFrame:
    """The fixture in Amazon 2014 5-core JSON-lines format, as ``load_reviews`` returns it."""
    raw = pd.read_json(fixtures_dir / "mvae" / "reviews_5.json", lines=True)
    return pd.DataFrame({"user": raw["reviewerID"], "item": raw["asin"], "rating": raw["overall"].astype(float),
                         "time": raw["unixReviewTime"], "text": raw["reviewText"], "summary": raw["summary"]})


def test_tokens_and_sentences():
    assert split_sentences("Great sound! The strap; ok.\nFine") == ["Great sound", "The strap", "ok", "Fine"]
    assert explanation_tokens("It's GREAT, 9.5 stars") == ["it's", "great", ",", "9.5", "stars"]


def test_features_hand_computed(reviews):
    sents = [explanation_tokens(s) for t in reviews["text"] for s in split_sentences(t)]
    # co-occurrence counts with an opinion word (window 3): cable 5, sound 4, strap 4, price 2, plug/overall/feels 1
    assert extract_features(sents, min_feature_count=2) == ["cable", "sound", "strap", "price"]
    assert extract_features(sents, min_feature_count=5) == ["cable"]


def test_build_explanations_hand_computed(reviews):
    data = build_explanations(reviews, min_feature_count=2)
    df = data.df
    # review 8 ("Good strap. Works fine.") has no sentence of >= 4 tokens, review 10 ("ok") none at all
    assert len(df) == 8 and data.n_users == 5 and data.n_items == 3
    assert df["explanation"].tolist()[:2] == ["the sound is great", "nice strap for the price"]
    assert df.loc[5, "explanation"] == "the cable is noisy and the plug is weak"  # "Bad cable." is too short
    assert df["feature"].tolist() == ["sound", "strap", "sound", "cable", "strap", "cable", "sound", "cable"]
    assert df["sentiment"].tolist() == [1, 1, 0, 1, 1, 0, 1, 1]  # rating >= 3 is positive (rating 3 included)
    assert all(f in toks for f, toks in zip(df["feature"], df["tokens"]))
    stats = explanation_stats(data).set_index("statistic")["value"]
    assert stats["# of reviews"] == 8 and stats["Avg. # of reviews/item"] == pytest.approx(8 / 3)
    assert stats["Share repeating any sample's text"] == 0.0  # eight different sentences


def test_stats_count_repeated_explanations(reviews):
    data = build_explanations(reviews, min_feature_count=2)
    # three samples share one text: two of them by user 0, the third by user 1
    data.df.loc[[0, 1, 3], "tokens"] = pd.Series([["same", "words"]] * 3, index=[0, 1, 3])
    data.df.loc[[0, 1, 3], "user_idx"] = [0, 0, 1]
    stats = explanation_stats(data).set_index("statistic")["value"]
    assert stats["Share repeating any sample's text"] == pytest.approx(3 / 8)
    assert stats["Share repeating the same user's text"] == pytest.approx(2 / 8)


def test_sparse_filter(reviews):
    # every user has 2 reviews except U5 and U6 (1 each); items have 3-4: only U5's sample survives N = 2
    data = build_explanations(reviews, min_feature_count=2, sparse_max_reviews=2)
    assert data.df["user"].tolist() == ["U5"]
    assert len(build_explanations(reviews, min_feature_count=2, sparse_max_reviews=3)) == 8


def test_bad_input(reviews):
    with pytest.raises(ValueError, match="column"):
        build_explanations(reviews.drop(columns="text"))
    with pytest.raises(ValueError, match="no feature words"):
        build_explanations(reviews, min_feature_count=99)


def test_from_peter_records():
    recs = [{"user": "a", "item": "x", "rating": 4, "template": ("room", "clean", "The room was clean", 1)},
            {"user": "b", "item": "x", "rating": 2, "template": ("staff", "rude", "Staff were rude", -1)}]
    data = from_peter(recs)
    assert data.df["explanation"].tolist() == ["the room was clean", "staff were rude"]
    assert data.features == ["room", "staff"] and data.df["sentiment"].tolist() == [1, 0]


def _synthetic(n_users=30, n_items=20, n=600, seed=0) -> ExplanationData:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"user": rng.integers(0, n_users, n).astype(str), "item": rng.integers(0, n_items, n).astype(str),
                       "rating": rng.integers(1, 6, n).astype(float)})
    df["tokens"] = [["w%d" % k, "great"] for k in range(n)]
    df["explanation"] = df["tokens"].map(" ".join)
    df["feature"] = "w0"
    return _finalise(df, ["w0"], "synthetic")


def test_random_split_properties():
    data = _synthetic()
    parts = split_rows(data, 0, seed=3)
    allrows = np.concatenate(list(parts.values()))
    assert sorted(allrows.tolist()) == list(range(len(data)))  # a partition
    assert len(parts["test"]) == len(parts["valid"]) == 60
    tr = data.df.iloc[parts["train"]]
    te = data.df.iloc[parts["test"]]
    assert set(te["user_idx"]) <= set(tr["user_idx"]) and set(te["item_idx"]) <= set(tr["item_idx"])
    users, items = data.df["user_idx"].to_numpy(), data.df["item_idx"].to_numpy()
    assert not np.array_equal(parts["test"], split_rows(data, 1, seed=3)["test"])  # split k is seeded by seed + k
    assert np.array_equal(parts["test"], random_split(users, items, seed=3)["test"])
    with pytest.raises(ValueError, match="too few"):
        random_split(users[:40], items[:40], seed=0, ratios=(0.2, 0.4, 0.4))


def test_duplicate_half_for_fig4():
    data = _synthetic(n=101)
    dup, rows = duplicate_half(data, seed=0)
    assert len(rows) == 50 and len(dup) == 100
    a, b = dup.df.iloc[:50], dup.df.iloc[50:]
    assert (a["explanation"].to_numpy() == b["explanation"].to_numpy()).all()
    assert set(a["user_idx"]).isdisjoint(set(b["user_idx"])) and set(a["item_idx"]).isdisjoint(set(b["item_idx"]))
    assert dup.n_users == 2 * a["user"].nunique()


def test_normalized_cosine_and_bins():
    a = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]])
    b = np.array([[2.0, 0.0], [-1.0, 0.0], [1.0, 0.0]])
    assert protocol.normalized_cosine(a, b) == pytest.approx([1.0, 0.0, 0.5])
    out = protocol.binned_mean(np.array([4.0, 1, 3, 2]), np.array([40.0, 10, 30, 20]), n_bins=2)
    assert out["x"] == [1.5, 3.5] and out["y"] == [15.0, 35.0]
    half = 1.96 * np.std([10.0, 20.0], ddof=1) / np.sqrt(2)
    assert out["lo"][0] == pytest.approx(15 - half) and out["hi"][0] == pytest.approx(15 + half)
    # user-count bins [1], [2], [3, 4], [5, 9], [10, inf) of Figs. 4-5
    assert protocol.count_bin(np.array([1, 2, 3, 4, 5, 9, 10, 40])).tolist() == [0, 1, 2, 2, 3, 3, 4, 4]
    got = protocol.binned_by_count(np.array([1, 1, 3, 12]), np.array([1.0, 3.0, 5.0, 7.0]))
    assert got[0] == 2.0 and np.isnan(got[1]) and got[2] == 5.0 and np.isnan(got[3]) and got[4] == 7.0


def test_config_scales_and_errors():
    from xrec_core.config import ConfigError

    cfg = mvae.MVAEConfig.from_scale("paper")
    assert (cfg.d_model, cfg.n_rd, cfg.n_rs, cfg.beta, cfg.anneal_k, cfg.clip, cfg.dropout, cfg.vocab_size, cfg.n_splits) == \
        (768, 4, 3, 1e-3, 0.0025, 5.0, 0.3, 20000, 5)
    # 1,536 compressed 7 times by 0.5 gives the paper's 12-dimensional code
    assert 2 * cfg.d_model // 2 ** (cfg.n_rd + cfg.n_rs) == 12
    full = mvae.MVAEConfig.from_scale("full")
    assert 2 * full.d_model // 2 ** (full.n_rd + full.n_rs) == 12
    with pytest.raises(ConfigError, match="Unknown model"):
        mvae.MVAEConfig.from_scale("smoke", models="MVAE,GPT9")
    with pytest.raises(ConfigError, match="needs rating .*text .*which dataset 'citeulike-a' lacks"):
        mvae.MVAEConfig.from_scale("smoke", dataset="citeulike-a")


def test_peter_files_with_index_splits_and_sparse_filter(fixtures_dir):
    from xrec_core.data.peter import parse_reviews_pickle, read_index

    folder = fixtures_dir / "mvae" / "peter"
    df = parse_reviews_pickle(folder / "reviews.pickle")  # the data layer's restricted unpickler
    index = {p: read_index(folder / "1" / f"{p}.index") for p in ("train", "validation", "test")}
    data = from_peter(df, splits=[index])
    assert len(data) == 6 and data.fixed_splits[0]["test"].tolist() == [1]
    assert data.df.loc[1, "explanation"] == "staff were rude at check - in"
    # filter N = 2: h1 has 4 reviews; u1, u3 have 2 -> rows of u1/u3 on h1 go (0, 3); the others stay
    kept = from_peter(df, splits=[index], sparse_max_reviews=2)
    assert kept.df["explanation"].tolist() == ["staff were rude at check - in", "great breakfast with fresh fruit",
                                               "the pool is nice", "the room is small and noisy"]
    sp = kept.fixed_splits[0]
    assert sp["train"].tolist() == [1, 2, 3] and sp["valid"].tolist() == [] and sp["test"].tolist() == [0]


def test_simple_baseline_summary_names_the_losses():
    rows = [{"table": "Table 2", "model": name, "metric": m, "value": v}
            for name, v in ((mvae.RETRIEVAL, 10.0), (mvae.USER_RETRIEVAL, 12.5), ("MVAE", 12.0), ("PETER", 8.0))
            for m in mvae.TABLE2_METRICS]
    rows[-1]["value"] = 11.0  # PETER's METEOR beats retrieval
    text = mvae.simple_baseline_summary([{"dataset": "d", "scale": "full", "metrics": rows}])
    assert "MVAE is below the item medoid retrieval on 0 of 9 metrics" in text
    peter_item = next(c for c in text.split("; ") if c.startswith("PETER is below the item medoid"))
    assert peter_item.startswith("PETER is below the item medoid retrieval on 8 of 9 metrics") and "METEOR" not in peter_item
    assert "MVAE is below the user medoid retrieval on 9 of 9 metrics" in text
    assert "Best BLEU-1: Retrieval (user medoid) (12.50)" in text
