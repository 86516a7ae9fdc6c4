"""NAR / CAR / CNR building blocks against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from xrec_core.experiments.nar import explanation_metrics, ranking_metrics
from xrec_core.models.nar.features import item_features, mention_counts, user_features
from xrec_core.experiments.nar import NARConfig, ranker_params
from xrec_core.models.nar.models import (CAR, CNR, NAR, CandidateValidation, FeatureInteractions, bpr_loss,
                                         elastic_distance, fgsm_perturbation, ndcg_of_first)
from xrec_core.models.nar.sentires import SentimentExtractor, candidate_mentions, noun_rates

LEXICON = {"great": 3.1, "good": 1.9, "bad": -2.5, "noisy": -1.0}


def test_candidate_mentions_pair_features_with_opinions_and_negation():
    mentions = candidate_mentions("The sound is great, but the strap is not good.", LEXICON, window=3)
    pairs = {(m.feature, m.opinion, m.sentiment) for m in mentions}
    assert ("sound", "great", 1) in pairs
    assert ("strap", "good", -1) in pairs  # "not" flips the opinion
    assert all(m.feature not in ("the", "is", "not") for m in mentions)
    # clauses are split at commas and "but": the strap is never paired with "great"
    assert ("strap", "great", 1) not in pairs


def test_noun_rates_count_determiner_contexts():
    texts = ["the sound works", "my sound is fine", "it works well", "sound works"]
    rates = noun_rates(texts, {"sound", "works"})
    assert rates["sound"] == pytest.approx(2 / 3)
    assert rates["works"] == 0.0


def test_extractor_keeps_frequent_noun_like_features_and_maps_mentions(monkeypatch):
    from xrec_core.models.nar import sentires

    monkeypatch.setattr(sentires, "vader_lexicon", lambda: LEXICON)  # a tiny lexicon: the expected output is known
    texts = ["the tuner is great", "a great tuner", "the tuner works great", "the cable is bad", "this cable is bad"]
    ex = SentimentExtractor(n_features=5, min_reviews=2, window=2, min_noun_rate=0.3).fit(texts)
    out = ex.transform(["the tuner is bad"])
    assert ex.features_ == ["tuner", "cable"]  # "works" co-occurs once and is never after a determiner
    assert out == [[(0, -1, "bad")]]


def test_mention_counts_and_eq1_by_hand():
    t_u, t_i, s_i = mention_counts([0, 0, 1], [0, 1, 1], [[(0, 1), (1, -1)], [(0, 1)], [(0, -1)]], 2, 2, 2)
    np.testing.assert_array_equal(t_u, [[2, 1], [1, 0]])
    np.testing.assert_array_equal(t_i, [[1, 1], [2, 0]])
    np.testing.assert_allclose(s_i, [[1, -1], [0, 0]])
    T = 5.0
    fu = user_features(t_u, T)
    assert fu[0, 0] == pytest.approx(1 + (T - 1) * (2 / (1 + math.exp(-2)) - 1))
    assert fu[1, 1] == 0.0  # not mentioned
    fi = item_features(t_i, s_i, T)
    assert fi[0, 1] == pytest.approx(1 + (T - 1) / (1 + math.exp(1)))
    assert fi[1, 0] == pytest.approx(1 + (T - 1) / (1 + math.exp(0)))  # mentioned with mixed sentiment
    assert fi[1, 1] == 0.0
    assert ((fu == 0) | ((fu >= 1) & (fu <= T))).all() and ((fi == 0) | ((fi >= 1) & (fi <= T))).all()


def test_ranking_metrics_by_hand():
    # user 0: 2 positives (columns 0, 1) among 4 columns; user 1: 1 positive (column 0)
    scores = np.array([[0.9, 0.1, 0.5, 0.3],
                       [0.2, 0.8, 0.7, -np.inf]])
    m = ranking_metrics(scores, np.array([2, 1]), k=2)
    # user 0 top-2: [0, 2] -> one hit at rank 1; user 1 top-2: [1, 2] -> no hit
    np.testing.assert_allclose(m["Precision"], [0.5, 0.0])
    np.testing.assert_allclose(m["Recall"], [0.5, 0.0])
    np.testing.assert_allclose(m["F1"], [0.5, 0.0])
    np.testing.assert_allclose(m["Hit Rate"], [1.0, 0.0])
    np.testing.assert_allclose(m["NDCG"], [1.0 / (1.0 + 1.0 / math.log2(3)), 0.0])
    np.testing.assert_allclose(m["MRR"], [1.0, 0.0])


def test_explanation_metrics_by_hand():
    phi = np.array([[0.5, 0.1, 0.3, 0.0], [0.0, 0.0, 0.0, 0.0], [0.1, 0.2, 0.3, 0.4]])
    gt = [np.array([0, 3]), np.array([], dtype=int), np.array([3])]
    out = explanation_metrics(phi, gt, k=2)  # user 1 has no ground truth and is left out
    # user 0 top-2 {0, 2}: 1 hit of 2 gt; user 2 top-2 {3, 2}: 1 hit of 1 gt
    assert out["Precision"] == pytest.approx((0.5 + 0.5) / 2)
    assert out["Recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["F1"] == pytest.approx((0.5 + 2 * 0.5 * 1.0 / 1.5) / 2)
    ndcg0 = 1.0 / (1.0 + 1.0 / math.log2(3))
    assert out["NDCG"] == pytest.approx((ndcg0 + 1.0) / 2)


def test_fgsm_has_the_stated_norm_and_zero_rows_stay_zero():
    grad = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-1.0, 1.0]])
    delta = fgsm_perturbation(grad, epsilon=0.5)
    np.testing.assert_allclose(delta.norm(dim=1).numpy(), [0.5, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(delta[0].numpy(), [0.3, 0.4], atol=1e-6)  # along the gradient


def test_elastic_distance():
    d = torch.tensor([[1.0, -2.0]])
    assert elastic_distance(d, "l2").item() == pytest.approx(5.0)
    assert elastic_distance(d, "elastic").item() == pytest.approx(8.0)
    with pytest.raises(ValueError):
        elastic_distance(d, "l1")


def _toy(seed=0, n_users=12, n_items=15, P=6):
    rng = np.random.default_rng(seed)
    f_u = rng.random((n_users, P)).astype(np.float32)
    f_i = rng.random((n_items, P)).astype(np.float32)
    train = sp.csr_matrix((rng.random((n_users, n_items)) < 0.3).astype(float))
    return f_u, f_i, train


def _params(**overrides):
    return ranker_params(NARConfig.from_scale("smoke"), seed=overrides.pop("seed", 0)) | overrides


def _fit(cls, f_u, f_i, train, **overrides):
    """Fit on ``train`` with a validation of user 0's first positive among the other items."""
    pos = train[0].indices[0]
    pool = np.array([[pos] + [j for j in range(train.shape[1]) if j != pos]])
    return cls(**_params(**overrides)).fit(FeatureInteractions(train, f_u, f_i), CandidateValidation(np.array([0]), pool, 10))


def test_ndcg_of_first_by_hand():
    scores = np.array([[0.5, 0.1, 0.9, 0.2],   # positive ranked 2nd -> 1/log2(3)
                       [0.9, 0.1, 0.2, 0.3],   # 1st -> 1
                       [0.1, 0.1, 0.5, 0.3]])  # a tie counts against it: 3rd -> outside k=2
    assert ndcg_of_first(scores, k=2) == pytest.approx((1 / math.log2(3) + 1.0 + 0.0) / 3)


def test_fgsm_perturbation_increases_the_bpr_loss():
    f_u, f_i, train = _toy()
    model = _fit(CAR, f_u, f_i, train, dim=8, max_epochs=5, patience=5, epsilon=0.05, seed=1)
    users, pos = train.nonzero()
    neg = (pos + 1) % train.shape[1]
    keep = np.asarray(train[users, neg]).ravel() == 0
    u, i, j = (torch.as_tensor(x[keep]) for x in (users, pos, neg))
    with torch.no_grad():
        before = bpr_loss(model._scores(u, i), model._scores(u, j)).item()
    delta = model._fgsm(u, i, j)
    np.testing.assert_allclose(delta.norm(dim=1).numpy(), 0.05, rtol=1e-5)
    with torch.no_grad():
        after = bpr_loss(model._scores(u, i, delta), model._scores(u, j, delta)).item()
    assert after > before


def test_counterfactual_step_flips_the_decision_it_targets():
    f_u, f_i, _ = _toy(seed=3)
    # one user, one positive: the pair (0, 0) against every sampled negative
    train = sp.csr_matrix(([1.0], ([0], [0])), shape=(f_u.shape[0], f_i.shape[0]))
    model = CNR(**_params(dim=8, cf_beta=1e-4, cf_inner=300, cf_lr=0.1, lr=1e-2))
    model._init(FeatureInteractions(train, f_u, f_i))
    optimizer = model._optimizer()
    for _ in range(30):
        for batch in model._batches(0):
            optimizer.zero_grad()
            model._bpr_step(batch).backward()
            optimizer.step()
    u, i = torch.tensor([0]), torch.tensor([0])
    js = torch.arange(1, f_i.shape[0])
    with torch.no_grad():
        assert (model._scores(u.repeat(len(js)), i.repeat(len(js))) > model._scores(u.repeat(len(js)), js)).all()
    rate = model.counterfactual_step()
    assert rate == 1.0
    d = model.state.delta_user[0]
    assert d.abs().sum() > 0 and model.state.delta_user[1:].abs().sum() == 0  # only the targeted user moves


def test_nar_attention_is_a_distribution_over_features():
    f_u, f_i, train = _toy()
    model = _fit(NAR, f_u, f_i, train, dim=8, max_epochs=2, patience=2)
    phi = model.explanations(np.arange(f_u.shape[0]))
    assert phi.shape == f_u.shape
    np.testing.assert_allclose(phi.sum(1), 1.0, rtol=1e-5)
    assert (phi >= 0).all()


def test_item_bias_lets_a_ranker_learn_popularity():
    """With every feature and user alike, only popularity separates items: the item bias must pick it up."""
    rng = np.random.default_rng(0)
    n_users, n_items = 60, 20
    popular = (rng.random((n_users, n_items)) < np.linspace(0.9, 0.02, n_items)).astype(float)
    train = sp.csr_matrix(popular)
    f = np.zeros((n_users, 3), np.float32), np.zeros((n_items, 3), np.float32)
    model = _fit(CAR, *f, train, dim=4, max_epochs=15, patience=15, lr=5e-2)
    bias = model.state.bias.weight.detach().numpy().ravel()
    assert np.corrcoef(bias, train.sum(0).A1)[0, 1] > 0.9
    assert CAR(**_params(item_bias=False)).item_bias is False


def test_early_stopping_keeps_the_best_validation_state():
    f_u, f_i, train = _toy(seed=1)
    model = _fit(NAR, f_u, f_i, train, dim=8, max_epochs=30, patience=2, lr=1e-2)
    curve = model.curves["base"]
    assert curve.stopped_early or curve.epochs == 30
    assert curve.best_value == max(curve.valid)
    assert model._validate() == pytest.approx(curve.best_value)  # the kept state is the best one


def test_run_model_masks_padded_columns_by_hand():
    """Users with fewer test positives get their pool padded with a repeated negative, which must not count."""
    import pandas as pd

    from xrec_core.experiments.nar import NARConfig, NARData, run_model

    # popularity from training: item 4 -> 3, items 3 and 5 -> 1, items 0-2 -> 0
    train = sp.csr_matrix(([1.0] * 5, ([0, 0, 1, 1, 2], [3, 4, 4, 5, 4])), shape=(3, 6))
    data = NARData(3, 6, ["a"], np.zeros((3, 1), np.float32), np.zeros((6, 1), np.float32), train,
                   test_users=np.array([0, 1]), test_items=[np.array([0, 1]), np.array([2])],
                   candidates=np.array([[2, 5], [3, 0]]), ground_truth=[np.zeros(0, int)] * 3,
                   stats=pd.DataFrame(), files=[])
    out = run_model("MostPop", data, NARConfig(k=2, valid_candidates=2), seed=0)["ranking"]
    # user 0 pool [0, 1, 2, 5] scores [0, 0, 0, 1]: top-2 = item 5, item 0 -> one hit at rank 2
    # user 1 pool [2, 3, 0, (3)] scores [0, 1, 0, -inf]: top-2 = item 3, item 2 -> its hit at rank 2
    # (without the mask the padded copy of item 3 would push item 2 out of the top 2)
    g = 1.0 / math.log2(3)
    assert out["Precision"] == pytest.approx(0.5)
    assert out["Recall"] == pytest.approx((0.5 + 1.0) / 2)
    assert out["F1"] == pytest.approx((0.5 + 2 / 3) / 2)
    assert out["Hit Rate"] == pytest.approx(1.0)
    assert out["NDCG"] == pytest.approx((g / (1 + g) + g) / 2)
    assert out["MRR"] == pytest.approx(0.0)


def test_reduction_notes_name_every_cut_below_the_preset():
    from xrec_core.experiments.nar import NARConfig, reduction_notes

    assert reduction_notes(NARConfig.from_scale("full")) == []
    assert reduction_notes(NARConfig.from_scale("smoke")) == []  # the smoke preset itself is not a cut
    notes = reduction_notes(NARConfig.from_scale("full", dataset="mter-cellphones", max_users=1000, n_seeds=1))
    assert len(notes) == 2 and "1000 random users" in notes[0] and "1 seed(s)" in notes[1]


def _results(ndcg, f1):
    return {m: [{"ranking": {"NDCG": v}, "explain": {"F1": f1.get(m, [0.0] * len(vals))[i]}} for i, v in enumerate(vals)]
            for m, vals in ndcg.items()}


def _recorder(tmp_path):
    from xrec_core.experiments import nar
    from xrec_core.records import RunRecorder

    cfg = nar.NARConfig.from_scale("smoke", results_dir=str(tmp_path))
    return RunRecorder("nar", config=cfg, scale="smoke", dataset=cfg.dataset, seed=0, results_dir=tmp_path), cfg


def test_claims_need_significant_wins_over_the_seeds(tmp_path):
    from xrec_core.experiments.nar import report

    ndcg = {m: [0.10, 0.11, 0.12] for m in nar_models()}
    ndcg["CAR"] = [0.30, 0.31, 0.33]  # clearly best on every seed
    ndcg["NAR"] = [0.01, 0.02, 0.015]  # clearly worst
    ndcg["CNR"] = [0.16, 0.09, 0.16]  # higher mean than CER (0.137 vs 0.11) but not on every seed: no claim
    f1 = {"NAR": [0.2, 0.21, 0.22], "CAR": [0.01, 0.02, 0.01], "CNR": [0.25, 0.2, 0.3]}
    rec, cfg = _recorder(tmp_path)
    report._claims(rec, _results(ndcg, f1), cfg)
    verdicts = {c.claim: c.verdict for c in rec.claims}
    assert verdicts["CAR outperforms every other model of Tables 4-8 (NDCG@10)"] == "holds"
    assert verdicts["NAR is the weakest on small data sets (NDCG@10)"] == "holds"
    assert verdicts["CAR's explanations are far worse than NAR's and CNR's (F1)"] == "holds"
    assert verdicts["CAR beats MostPop and tuned BPR (NDCG@10; our addition)"] == "holds"
    # MostPop and BPR sit at the same values as VBPR: a tie, not a win
    assert verdicts["VBPR beats MostPop and tuned BPR (NDCG@10; our addition)"] == "fails"
    cnr = next(c for c in rec.claims if c.claim == "CNR beats CER (NDCG@10)")
    assert cnr.verdict == "fails" and "3 seeds, paired t-test" in cnr.evidence and "not significant" in cnr.evidence


def nar_models():
    from xrec_core.experiments import nar

    return nar.PAPER_MODELS + nar.EXTRA_MODELS


def test_claims_are_untestable_with_one_seed_a_missing_comparator_or_an_unhealthy_model(tmp_path):
    from xrec_core.experiments.nar import report
    from xrec_core.health import ranker_vs_mostpop

    one_seed = {m: [0.1] for m in nar_models()} | {"CAR": [0.5]}
    rec, cfg = _recorder(tmp_path)
    report._claims(rec, _results(one_seed, {}), cfg)
    assert {c.verdict for c in rec.claims} == {"untestable"}
    assert all("1 seed" in c.evidence for c in rec.claims)

    three = {m: [0.1, 0.11, 0.12] for m in nar_models()} | {"CAR": [0.5, 0.52, 0.55]}
    results = _results(three, {})
    results["CER"][1] = None  # CER crashed on the second seed
    del results["BPR (tuned)"]  # and BPR never ran
    rec, cfg = _recorder(tmp_path)
    rec.add_health([ranker_vs_mostpop("NCF", cfg.dataset, 0.01, 0.1, "NDCG@10")])  # NCF failed its health check
    report._claims(rec, results, cfg)
    by_claim = {c.claim: c for c in rec.claims}
    car = by_claim["CAR outperforms every other model of Tables 4-8 (NDCG@10)"]
    assert car.verdict == "untestable" and "CER" in car.evidence
    assert by_claim["CAR beats MostPop and tuned BPR (NDCG@10; our addition)"].verdict == "untestable"
    assert "BPR (tuned)" in by_claim["CAR beats MostPop and tuned BPR (NDCG@10; our addition)"].evidence
    ncf = by_claim["NCF beats MostPop and tuned BPR (NDCG@10; our addition)"]
    assert ncf.verdict == "untestable"


def test_health_checks_hold_every_learned_model_to_mostpop(tmp_path):
    from xrec_core.experiments.nar import report

    ndcg = {m: [0.20, 0.22] for m in nar_models()} | {"NAR": [0.10, 0.12]}
    results = _results(ndcg, {})
    for runs in results.values():
        for r in runs:
            r["learning_curves"] = {"base": {"train_loss": [0.69, 0.5, 0.4]}}
    rec, cfg = _recorder(tmp_path)
    report._health(rec, results, cfg)
    assert rec.unhealthy() == {"NAR"}  # 0.11 < 0.9 x 0.21
    checked = {(c["model"], c["check"]) for c in rec.health}
    from xrec_core.experiments.nar import LEARNED_MODELS

    assert {m for m, _ in checked} == set(LEARNED_MODELS)
    assert ("CAR", "training loss went down") in checked


def test_registry_builds_every_model_of_the_paper_tables():
    from xrec_core.experiments import nar
    from xrec_core.models.registry import RANKING, build, entry, implements

    cfg = NARConfig.from_scale("smoke")
    for name in nar.PAPER_MODELS + ("CNR-L2",):
        params = ranker_params(cfg, 0) if name != "NCF" else {}
        model = build(name, **params)
        assert implements(model, RANKING), name
        assert entry(name).role == RANKING
    for name in ("NAR", "CAR", "CNR", "CNR-L2", "VBPR", "CER"):
        space = entry(name).search_space
        assert {"lr", "dim", "weight_decay"} <= set(space), name
    assert {"epsilon", "adv_weight"} <= set(entry("CAR").search_space)
    assert "cf_beta" in entry("CNR").search_space
    assert implements(build("MostPop"), RANKING) and implements(build("BPR", **nar.bpr_params(cfg, 0)), RANKING)
