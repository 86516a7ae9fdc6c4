"""The "Ask the GRU" protocol on a hand-written MTER fixture: data preparation, folds, units, records."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from xrec_core.config import ConfigError
from xrec_core.data.mter import build_mter
from xrec_core.experiments import gru as chapter

torch.set_num_threads(1)


@pytest.fixture
def tiny(fixtures_dir):
    folder = fixtures_dir / "gru" / "mter"
    d = build_mter({ext: folder / f"tiny.{ext}" for ext in ("entry", "featuremap", "wordmap", "usermap", "itemmap")})
    cfg = chapter.GRUConfig.from_scale(
        "smoke", max_items=0, min_user_likes=3, min_item_likes=3, min_tag_items=2, min_word_freq=1, n_folds=2,
        folds_run=2, k=4, k_h1=3, batch_users=4, max_updates=4, eval_every=2, cbow_epochs=1, n_saliency=2,
        ctr_k=3, ctr_max_iter=2, ctr_lda_iter=2, bpr_epochs=2, results_dir="")
    return d, cfg, chapter.from_mter(d, cfg)


def test_from_mter_builds_items_likes_and_feature_tags(tiny):
    d, cfg, data = tiny
    # user 7 has a single like -> removed (min_user_likes=3); items keep their ids
    assert data.n_users == 7 and data.n_items == 10
    assert data.likes.nnz == 34
    assert data.likes[0].indices.tolist() == [0, 1, 2, 3, 6]
    # tags = features mentioned in an item's reviews (from all users, before user filtering)
    t = data.tags.toarray()
    assert t[0].tolist() == [1, 1, 0, 0]  # item 0: battery (all reviews) and case (user 0)
    assert t[2].tolist() == [1, 0, 1, 0]  # item 2: screen and battery
    assert data.tag_names == ["battery", "case", "screen", "charger"]
    # title text, html-unescaped, tokenized in order; "&amp;" became "&"
    assert " ".join(data.itos[i] for i in data.tokens[3] if i) == "replacement battery for galaxy s3 & note"
    assert data.ordered
    assert data.bow.shape == (10, len(data.itos))
    assert data.bow[3, data.itos.index("battery")] == 1 and data.bow[3, data.itos.index("for")] == 0  # stop word
    stats = chapter.data_statistics(data)
    assert int(stats.loc[0, "likes"]) == 34


def test_folds_follow_the_protocol(tiny):
    _, cfg, data = tiny
    folds = chapter.make_folds(data, cfg)
    assert [f.scenario for f in folds] == ["warm", "warm", "cold", "cold"]
    pop = np.asarray(data.likes.sum(0)).ravel()
    eligible = pop >= cfg.min_item_likes
    all_likes = {(u, j) for u in range(data.n_users) for j in data.likes[u].indices}
    warm_tests = set()
    for f in folds:
        train = {(u, j) for u in range(data.n_users) for j in f.train[u].indices}
        test = {(int(u), int(j)) for u, rel in zip(f.test_users, f.test_relevant) for j in rel}
        valid = {(int(u), int(j)) for u, rel in zip(f.valid.users, f.valid.relevant) for j in rel}
        assert not train & test and not train & valid and not test & valid
        assert train | test | valid == all_likes
        assert all(eligible[j] for _, j in test)  # papers with < 5 (here 3) likes always in training
        assert np.array_equal(f.known, np.asarray(f.train.sum(0)).ravel() > 0)
        if f.scenario == "warm":
            warm_tests |= test
            assert f.candidates is None and f.exclude is not None
        else:
            # cold: the test items have no training like and no item-specific embedding
            assert not f.known[f.candidates].any()
            assert {j for _, j in test} <= set(f.candidates.tolist())
    # the two warm folds' test sets together cover every like on an eligible paper
    assert warm_tests == {(u, j) for u, j in all_likes if eligible[j]}


def test_protocol_units_resume_and_record(tiny, tmp_path):
    from xrec_core.records import RunRecorder, UnitStore

    _, cfg, data = tiny
    cfg.models = "GRU-MTL,Embed"
    cfg.baselines = False
    folds = chapter.make_folds(data, cfg)[::2]  # one warm, one cold fold
    store = UnitStore(tmp_path / "units", chapter.unit_fingerprint(cfg))
    res = chapter.run_protocol(cfg, data, folds, store=store, progress=False)
    assert set(res["warm"]) == {"GRU-MTL", "Embed"} and len(res["cold"]["GRU-MTL"]) == 1
    r = res["cold"]["GRU-MTL"][0]
    assert len(r["recall_curve"]) == 100 and 0 <= r["recall50"] <= 1 and "tag_recall50" in r
    assert np.all(np.diff(r["recall_curve"]) >= -1e-12)  # Recall@M is non-decreasing in M
    assert r["recall_curve"][49] == pytest.approx(r["recall50"])
    sal = res["warm"]["GRU-MTL"][0]["saliency"]
    assert len(sal) == 2 and len(sal[0]["words"]) == len(sal[0]["saliency"])
    # a rerun loads every unit instead of training
    again = chapter.run_protocol(cfg, data, folds, store=store, progress=False)
    assert again == res
    rec = RunRecorder("gru", config=cfg, scale="smoke", dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path)
    chapter.record_results(rec, cfg, data, res)
    d = rec.as_dict()
    metrics = {(m["model"], m["metric"]) for m in d["metrics"]}
    assert ("GRU-MTL", "Tag Recall@50 cold (%)") in metrics and ("Embed", "HR@10 warm") in metrics
    row = next(m for m in d["metrics"] if m["model"] == "Embed" and m["metric"] == "Recall@50 warm (%)")
    assert row["value"] == pytest.approx(100 * res["warm"]["Embed"][0]["recall50"])
    assert row["compare_to"] == "citeulike-a"
    assert "fig3_cold/GRU-MTL" in d["curves"] and d["tables"]["saliency"][0]["model"] == "GRU-MTL"
    claims = {c["claim"]: c["holds"] for c in d["claims"]}
    assert claims["cold: GRU beats the best of CTR and Embed (Recall@50)"] is None  # CTR did not run


def test_order_sensitive_models_not_testable_without_word_order(tiny):
    _, cfg, data = tiny
    data.ordered = False
    assert chapter.testable_models(cfg, data) == ["CTR-MTL", "CTR", "Embed-MTL", "Embed"]


def test_config_errors():
    with pytest.raises(ConfigError, match="dataset"):
        chapter.GRUConfig.from_scale("smoke", dataset="movielens")
    with pytest.raises(ConfigError, match="model"):
        chapter.GRUConfig.from_scale("smoke", models="GRU,LSTM")
    with pytest.raises(ConfigError, match="folds_run"):
        chapter.GRUConfig.from_scale("smoke", folds_run=6)
    cfg = chapter.GRUConfig.from_scale("paper")
    assert (cfg.k, cfg.k_h1, cfg.batch_users, cfg.max_updates, cfg.alpha, cfg.eps) == (200, 400, 512, 20000, 10.0, 1e-8)
    assert (cfg.dropout_emb, cfg.dropout_h1, cfg.dropout_h2) == (0.1, 0.5, 0.3)
    assert (cfg.ctr_k, cfg.ctr_lambda_u, cfg.ctr_lambda_v, cfg.ctr_a, cfg.ctr_b) == (200, 0.01, 100.0, 1.0, 0.01)

