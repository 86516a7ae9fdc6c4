"""The "Ask the GRU" protocol on a hand-written MTER fixture: data preparation, folds, units, records."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
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
        folds_run=2, k=4, k_gru=4, k_h1=3, batch_users=4, max_updates=4, updates_per_epoch=2, cbow_epochs=1,
        n_saliency=2, ctr_k=3, ctr_max_iter=2, ctr_lda_iter=2, bpr_k=3, bpr_epochs=2, results_dir="")
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


class Counting:
    """A unit computer that counts its calls and raises KeyboardInterrupt (an interrupt) after ``stop_after`` units."""

    def __init__(self, stop_after: int | None = None, crash: str | None = None) -> None:
        self.calls: list[tuple[str, int, str]] = []
        self.stop_after, self.crash = stop_after, crash

    def __call__(self, name, fold, data, cfg, pretrained):
        if self.stop_after is not None and len(self.calls) >= self.stop_after:
            raise KeyboardInterrupt
        self.calls.append((fold.scenario, fold.index, name))
        if name == self.crash:
            raise RuntimeError(f"{name} broke")
        return chapter.protocol.compute_unit(name, fold, data, cfg, pretrained)


def _record(cfg, data, res, tmp_path):
    from xrec_core.records import RunRecorder

    rec = RunRecorder("gru", config=cfg, scale="smoke", dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path)
    chapter.record_results(rec, cfg, data, res)
    return rec.as_dict()


def _store(cfg, path):
    from xrec_core.records import UnitStore

    return UnitStore(path, chapter.unit_fingerprint(cfg))


def test_interrupted_protocol_resumes_and_matches_an_uninterrupted_run(tiny, tmp_path):
    _, cfg, data = tiny
    cfg.models = "GRU-MTL,Embed"
    folds = chapter.make_folds(data, cfg)[1:3]  # warm fold 2 and cold fold 1
    n_units = 2 * 2 + 2  # two models per fold + MostPop and BPR on the warm fold
    store = _store(cfg, tmp_path / "units")
    first = Counting(stop_after=3)
    with pytest.raises(KeyboardInterrupt):
        chapter.run_protocol(cfg, data, folds, store=store, progress=False, compute=first)
    assert len(first.calls) == 3
    second = Counting()
    res = chapter.run_protocol(cfg, data, folds, store=store, progress=False, compute=second)
    assert len(second.calls) == n_units - 3 and not set(second.calls) & set(first.calls)
    third = Counting()
    again = chapter.run_protocol(cfg, data, folds, store=store, progress=False, compute=third)
    assert third.calls == []  # every unit loaded, none computed
    whole = chapter.run_protocol(cfg, data, folds, store=_store(cfg, tmp_path / "other"), progress=False)
    d, d_whole = _record(cfg, data, res, tmp_path), _record(cfg, data, whole, tmp_path / "w")
    assert [(m["model"], m["metric"], m["values"]) for m in d["metrics"]] == \
        [(m["model"], m["metric"], m["values"]) for m in d_whole["metrics"]]
    assert again["warm"]["Embed"][0]["recall50"] == res["warm"]["Embed"][0]["recall50"]


def test_record_has_rows_health_curves_and_claims(tiny, tmp_path):
    _, cfg, data = tiny
    cfg.models = "GRU-MTL,Embed"
    folds = chapter.make_folds(data, cfg)[::2]  # one warm, one cold fold
    res = chapter.run_protocol(cfg, data, folds, store=_store(cfg, tmp_path / "u"), progress=False)
    r = res["cold"]["GRU-MTL"][0]
    assert len(r["recall_curve"]) == 100 and 0 <= r["recall50"] <= 1 and "tag_recall50" in r
    assert np.all(np.diff(r["recall_curve"]) >= -1e-12)  # Recall@M is non-decreasing in M
    assert r["recall_curve"][49] == pytest.approx(r["recall50"])
    assert r["curve"]["epochs"] == len(r["curve"]["train_loss"]) >= 1 and r["updates"] <= cfg.max_updates
    sal = res["warm"]["GRU-MTL"][0]["saliency"]
    assert len(sal) == 2 and len(sal[0]["words"]) == len(sal[0]["saliency"])
    d = _record(cfg, data, res, tmp_path)
    metrics = {(m["model"], m["metric"]) for m in d["metrics"]}
    assert ("GRU-MTL", "Tag Recall@50 cold (%)") in metrics and ("Embed", "HR@10 warm") in metrics
    row = next(m for m in d["metrics"] if m["model"] == "Embed" and m["metric"] == "Recall@50 warm (%)")
    assert row["value"] == pytest.approx(100 * res["warm"]["Embed"][0]["recall50"])
    assert row["compare_to"] == "citeulike-a"
    assert "fig3_cold/GRU-MTL" in d["curves"] and d["tables"]["saliency"][0]["model"] == "GRU-MTL"
    # health: every ranker against MostPop on warm Recall@50, every neural fit's loss
    checks = {(h["model"], h["check"]) for h in d["health"]}
    for model in ("GRU-MTL", "Embed", "BPR"):
        assert (model, "Recall@50 warm >= 0.9x MostPop") in checks
    assert ("Embed", "training loss went down") in checks
    assert set(d["learning_curves"]) == {"GRU-MTL", "Embed"} and set(d["learning_curves"]["Embed"]) == {"warm fold 1", "cold fold 1"}
    claims = {c["claim"]: c for c in d["claims"]}
    # CTR did not run: untestable, and so is every claim with a single fold
    c = claims["cold: GRU beats CTR and Embed (Recall@50)"]
    assert c["verdict"] == "untestable" and "CTR" in c["evidence"]
    assert all(c["verdict"] == "untestable" for c in d["claims"])
    assert any("fold" in c["evidence"] or "not run" in c["evidence"] for c in d["claims"])


def test_a_crashed_baseline_makes_its_claims_untestable_and_is_noted(tiny, tmp_path):
    _, cfg, data = tiny
    cfg.models = "Embed"
    folds = [f for f in chapter.make_folds(data, cfg) if f.scenario == "warm"]  # two warm folds
    res = chapter.run_protocol(cfg, data, folds, store=_store(cfg, tmp_path / "u"), progress=False,
                               compute=Counting(crash="BPR"))
    assert sorted(res["crashed"]) == ["warm/fold0/BPR", "warm/fold1/BPR"] and "BPR" not in res["warm"]
    d = _record(cfg, data, res, tmp_path)
    assert any("BPR (warm)" in n and "missing" in n for n in d["notes"])
    bpr_claim = next(c for c in d["claims"] if "BPR" in c["claim"])
    assert bpr_claim["verdict"] == "untestable" and "not run or crashed: BPR" in bpr_claim["evidence"]


def test_claims_with_two_folds_are_decided(tiny, tmp_path):
    from xrec_core.experiments.common import ClaimJudge
    from xrec_core.records import RunRecorder

    _, cfg, data = tiny
    rec = RunRecorder("gru", config=cfg, scale="smoke", dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path)
    fold = {"recall50": 0.0, "hr10": 0.0}
    res = {"warm": {"Embed-MTL": [dict(fold, recall50=v) for v in (0.5, 0.6)],
                    "Embed": [dict(fold, recall50=v) for v in (0.2, 0.25)], "BPR": [dict(fold, recall50=0.1)] * 2},
           "cold": {}, "crashed": {}}
    chapter.report.judge_claims(ClaimJudge(rec, unit="fold"), res, cfg, data)
    claims = {c.claim: c for c in rec.claims}
    assert claims["warm: multi-task learning improves Embed (Recall@50)"].verdict == "holds"
    assert claims["warm: multi-task learning improves GRU (Recall@50)"].verdict == "untestable"
    # without word order the GRU claims are untestable with that reason
    data.ordered = False
    rec.claims.clear()
    chapter.report.judge_claims(ClaimJudge(rec, unit="fold"), res, cfg, data)
    c = next(c for c in rec.claims if c.claim == "warm: multi-task learning improves GRU (Recall@50)")
    assert c.verdict == "untestable" and "no word order" in c.evidence


def test_registry_builds_every_model_of_table1(tiny):
    from xrec_core.models.registry import build, entry

    _, cfg, data = tiny
    for name in chapter.MODELS:
        assert entry(name).search_space, name
    for name in chapter.NEURAL:
        model = build(name, **chapter.protocol.text_model_params(name, cfg, 0))
        assert model.name == name and model.mtl == name.endswith("-MTL")
    assert build("CTR-MTL", tags=data.tags, k=3).tags.shape == data.tags.shape
    assert {"lam"} <= set(entry("GRU-MTL").search_space) and {"lr", "k", "dropout_emb"} <= set(entry("Embed").search_space)
    for name in chapter.BASELINES:
        assert entry(name)


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
    assert (cfg.k, cfg.k_gru, cfg.k_h1, cfg.batch_users, cfg.max_updates, cfg.alpha, cfg.eps) == (200, 200, 400, 512, 20000, 10.0, 1e-8)
    assert (cfg.cbow_window, cfg.cbow_window_unordered) == (5, 50)
    assert (cfg.dropout_emb, cfg.dropout_h1, cfg.dropout_h2) == (0.1, 0.5, 0.3)
    assert (cfg.ctr_k, cfg.ctr_lambda_u, cfg.ctr_lambda_v, cfg.ctr_a, cfg.ctr_b) == (200, 0.01, 100.0, 1.0, 0.01)



def test_cbow_window_comes_from_the_config(tiny, monkeypatch):
    _, cfg, data = tiny
    seen = []
    monkeypatch.setattr(chapter.protocol, "pretrain_cbow", lambda *a, window, **kw: seen.append(window))
    cfg.cbow_window, cfg.cbow_window_unordered = 3, 40
    chapter.pretrained_embeddings(data, cfg, 4)
    data.ordered = False
    chapter.pretrained_embeddings(data, cfg, 4)
    assert seen == [3, 40]


def test_tuning_hook_runs_a_study_per_model_and_feeds_the_run(tiny, tmp_path):
    pytest.importorskip("optuna")
    _, cfg, data = tiny
    cfg.results_dir = str(tmp_path)
    res = chapter.tune_models(cfg, ["Embed", "BPR"], n_trials=2, data=data)
    assert set(res) == {"Embed", "BPR"} and all(r.n_trials_done == 2 for r in res.values())
    best = chapter.stored_best_params(cfg, ["Embed", "BPR", "CTR"])
    assert set(best) == {"Embed", "BPR"} and set(best["Embed"]) == {"lr", "k", "dropout_emb", "user_reg"}
    # the tuned values land in the model's config fields (BPR's under bpr_*)
    tuned_cfg = chapter.protocol.with_tuned(cfg, "BPR", best["BPR"])
    assert tuned_cfg.bpr_k == best["BPR"]["k"] and tuned_cfg.bpr_lr == best["BPR"]["lr"]


def test_bags_of_words_get_a_seeded_order_and_are_cut_at_max_len(fixtures_dir):
    """mult.dat's counts (no ordered text): each item's tokens are a permutation of its bag, cut at max_len."""
    from collections import Counter

    from xrec_core.data.citeulike import build_citeulike

    folder = fixtures_dir / "data" / "citeulike-t"
    d = build_citeulike("citeulike-t", folder, has_item_tag=False, text_file=None)
    cfg = chapter.GRUConfig.from_scale("smoke", max_items=0, min_user_likes=1, min_item_likes=1, min_tag_items=1,
                                       min_word_freq=1, max_len=3, results_dir="")
    data = chapter.from_citeulike(d, cfg)
    assert not data.ordered and data.tokens.shape == (4, 3)
    bags = d.bow.toarray()  # (items, words): item 1 is "regression" x3, item 3 "protein" x4
    for j in range(4):
        full = Counter(data.itos.index(w) for w in data.sentences[j])  # the whole bag, in the seeded order
        assert full == {w + 1: int(c) for w, c in enumerate(bags[j]) if c}
        kept = [int(t) for t in data.tokens[j] if t]
        assert kept == [data.itos.index(w) for w in data.sentences[j]][:3]  # the same order, cut at max_len
    assert data.tokens[3].tolist() == [2, 2, 2]  # 4 x "protein" (id 1 + PAD offset) cut at 3
    again = chapter.from_citeulike(d, cfg)
    assert np.array_equal(again.tokens, data.tokens)


def _unsorted(m):
    """``m`` as a CSR matrix with every row's indices in reverse order (valid, not canonical)."""
    m = m.tocsr()
    idx, val = m.indices.copy(), m.data.copy()
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        idx[lo:hi], val[lo:hi] = idx[lo:hi][::-1].copy(), val[lo:hi][::-1].copy()
    return sp.csr_matrix((val, idx, m.indptr.copy()), shape=m.shape)


def _read_only(obj, seen=None):
    """Mark every numpy array inside ``obj`` read-only, as a Ray worker receives shared arguments."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    if isinstance(obj, np.ndarray):
        obj.flags.writeable = False
    elif sp.issparse(obj):
        for part in (obj.data, obj.indices, obj.indptr):
            _read_only(part, seen)
    elif isinstance(obj, (list, tuple)):
        for x in obj:
            _read_only(x, seen)
    elif hasattr(obj, "__dict__"):
        for x in vars(obj).values():
            _read_only(x, seen)


def test_units_run_on_read_only_inputs_as_ray_workers_get_them(tiny):
    """Ray hands a unit its shared data read-only; a non-canonical sparse matrix is then sorted in place
    by the first ``sum`` (CTR's LDA) or ``eliminate_zeros`` (the text models) and the unit crashed."""
    import dataclasses

    from xrec_core.data.feedback import canonical_csr
    from xrec_core.experiments.gru.protocol import compute_unit

    raw = _unsorted(sp.csr_matrix(np.array([[0.0, 2.0, 1.0], [3.0, 0.0, 0.0]])))
    assert not raw.has_canonical_format
    fixed = canonical_csr(raw)
    assert fixed.has_canonical_format and not raw.has_canonical_format and (fixed != raw).nnz == 0
    assert np.shares_memory(canonical_csr(fixed).data, fixed.data)  # already canonical: not copied

    _, cfg, data = tiny
    data = dataclasses.replace(data, likes=_unsorted(data.likes), bow=_unsorted(data.bow), tags=_unsorted(data.tags))
    fold = chapter.make_folds(data, cfg)[0]
    _read_only(data), _read_only(fold)
    before = fold.train.copy()
    pretrained = chapter.pretrained_embeddings(data, cfg, cfg.k)
    for name in ("CTR", "Embed"):
        out = compute_unit(name, fold, data, cfg, lambda k: pretrained)
        assert 0.0 <= out["recall50"] <= 1.0, name
    assert (fold.train != before).nnz == 0
