"""Unit tests of the "Ask the GRU" models: encoders, scoring, losses, sampling, ranking metrics, saliency."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from xrec_core.data.splits import liked_pair_keys, sample_unliked
from xrec_core.models.gru import (
    EmbedEncoder, GRUEncoder, TextRecData, TextRecNet, TextRecommender, Validation, confidence_weights, pad_tokens,
    rating_loss, reciprocal_hit_rank, tag_loss, topk_from_factors, word_saliency,
)

torch.set_num_threads(1)

#: every setting a TextRecommender needs (the chapter config supplies them in a run)
SETTINGS = dict(k=8, k_h1=8, dropout=(0.1, 0.5, 0.3), mtl=False, lam=0.5, alpha=10.0, eps=1e-8, tag_neg_weight=0.01,
                user_reg=0.01, batch_users=16, lr=0.05, max_updates=150, updates_per_epoch=50, patience=2)


def _recommender(encoder="embed", **overrides):
    return TextRecommender(encoder, **{**SETTINGS, **overrides})


# ----------------------------------------------------------------------------- ranking metrics
def test_topk_and_recall_hr_hand_computed():
    # scores u^T f_j + b_j for one user: item 0: 1, 1: 3, 2: 2, 3: 3 (tie with 1 -> lower id first), 4: 0
    u = np.array([[1.0]])
    f = np.array([[1.0], [2.0], [2.0], [3.0], [0.0]])
    b = np.array([0.0, 1.0, 0.0, 0.0, 0.0])
    top = topk_from_factors(u, f, b, 5)
    assert top.tolist() == [[1, 3, 2, 0, 4]]
    # excluding item 3 (a training like) and restricting candidates
    top = topk_from_factors(u, f, b, 3, exclude=sp.csr_matrix(np.array([[0, 0, 0, 1, 0]])))
    assert top.tolist() == [[1, 2, 0]]
    top = topk_from_factors(u, f, b, 10, candidates=np.array([4, 0, 2]))
    assert top.tolist() == [[2, 0, 4]]


def test_recall_at_m_and_hr10_hand_computed():
    from xrec_core.experiments.gru import Fold, evaluate_topk

    # user A liked {2, 7, 9}: hits at ranks 1 and 4 -> Recall@1 = 1/3, Recall@4 = 2/3, HR@10 = 1 + 1/4
    # user B liked {5}: hit at rank 10 -> Recall@9 = 0, Recall@10 = 1, HR@10 = 1/10
    top = np.array([[2, 1, 3, 9, 4, 6, 8, 0, 11, 12],
                    [0, 1, 2, 3, 4, 6, 7, 8, 9, 5]])
    rel = [np.array([2, 7, 9]), np.array([5])]
    hr = reciprocal_hit_rank(top, rel, 10)
    assert hr == pytest.approx([1.25, 0.1])
    fold = Fold("warm", 0, sp.csr_matrix((2, 13)), np.ones(13, bool), np.array([0, 1]), rel, None, None,
                Validation(np.zeros(0, np.int64), [], None))
    out = evaluate_topk(top, fold)
    curve = out["recall_curve"]
    assert len(curve) == 100
    assert curve[0] == pytest.approx((1 / 3 + 0) / 2)
    assert curve[3] == pytest.approx((2 / 3 + 0) / 2)
    assert curve[8] == pytest.approx((2 / 3 + 0) / 2)
    assert curve[9] == pytest.approx((2 / 3 + 1) / 2)
    assert curve[99] == pytest.approx((2 / 3 + 1) / 2)  # fewer candidates than M: recall stays
    assert out["recall50"] == pytest.approx((2 / 3 + 1) / 2)
    assert out["hr10"] == pytest.approx((1.25 + 0.1) / 2)


def test_tag_recall_hand_computed():
    from xrec_core.experiments.gru import tag_recall

    tags = sp.csr_matrix(np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 0, 0]]))
    scores = np.array([[0.9, 0.1, 0.0, 0.5],   # item 0: tags {0, 2}; top-2 = {0, 3} -> 1/2
                       [1.0, 1.0, 1.0, 1.0],   # item 1: no tags -> skipped
                       [0.0, 0.9, 0.1, 0.2]])  # item 2: tag {1} at rank 1 -> 1
    assert tag_recall(scores, tags, np.array([0, 1, 2]), k=2) == pytest.approx(0.75)


# ----------------------------------------------------------------------------- losses
def test_confidence_weights_closed_form():
    w = confidence_weights(np.array([0, 1, 30]), alpha=10, eps=1e-8)
    assert w[0] == 1.0
    assert w[1] == pytest.approx(1 + 10 * math.log(1 + 1e8))
    assert w[2] == pytest.approx(1 + 10 * math.log(1 + 30 / 1e-8))
    with pytest.raises(ValueError):
        confidence_weights(np.array([-1]))


def test_rating_and_tag_loss_hand_computed():
    pred, target, w = torch.tensor([0.5, 0.2]), torch.tensor([1.0, 0.0]), torch.tensor([2.0, 3.0])
    assert float(rating_loss(pred, target, w)) == pytest.approx((2 * 0.25 + 3 * 0.04) / 2)
    logits, tags = torch.tensor([[0.0, 2.0]]), torch.tensor([[1.0, 0.0]])
    p = 1 / (1 + math.exp(-2.0))
    expected = -(math.log(0.5) + 0.1 * math.log(1 - p)) / 2
    assert float(tag_loss(logits, tags, neg_weight=0.1)) == pytest.approx(expected, rel=1e-6)


# ----------------------------------------------------------------------------- encoders
def test_embed_encoder_is_mean_of_word_embeddings_and_order_free():
    enc = EmbedEncoder(10, k_w=4, dropout=0.0).eval()
    tok = torch.tensor([[3, 5, 7, 0, 0], [7, 3, 5, 0, 0]])
    out = enc(tok)
    w = enc.word.weight.detach()
    assert torch.allclose(out[0], (w[3] + w[5] + w[7]) / 3, atol=1e-6)
    assert torch.allclose(out[0], out[1], atol=1e-6)


def test_gru_encoder_padding_invariant_and_order_sensitive():
    torch.manual_seed(0)
    enc = GRUEncoder(12, k_w=6, k_h1=5, k_h2=4, dropout=(0.0, 0.0, 0.0)).eval()
    a = enc(torch.tensor([[3, 5, 7]]))
    b = enc(torch.tensor([[3, 5, 7, 0, 0, 0]]))
    c = enc(torch.tensor([[7, 5, 3]]))
    assert a.shape == (1, 4)
    assert torch.allclose(a, b, atol=1e-6)  # packing: padding never reaches the states
    assert not torch.allclose(a, c, atol=1e-4)  # word order matters


# ----------------------------------------------------------------------------- cold start
def _tiny_net(kind: str = "gru", known=(True, True, False), n_tags: int = 0) -> TextRecNet:
    torch.manual_seed(1)
    enc = (GRUEncoder(9, k_w=4, k_h1=3, k_h2=4, dropout=(0.0, 0.0, 0.0)) if kind == "gru"
           else EmbedEncoder(9, k_w=4, dropout=0.0))
    net = TextRecNet(enc, n_users=2, n_items=3, known=np.array(known), n_tags=n_tags)
    with torch.no_grad():
        for p in (net.item.weight, net.item_bias.weight, net.user.weight, net.user_bias.weight):
            p.normal_()
    return net.eval()


def test_cold_start_items_have_no_item_specific_embedding():
    net = _tiny_net()
    items, tokens = torch.tensor([0, 2]), torch.tensor([[1, 2, 3], [1, 2, 3]])
    f, b = net.item_repr(items, tokens)
    g = net.encoder(tokens)
    assert torch.equal(f[1], g[1]) and float(b[1].detach()) == 0.0  # cold: f = g(X), b_j = 0
    assert not torch.allclose(f[0], g[0])  # warm: f = g(X) + v_j
    assert torch.allclose(f[0], g[0] + net.item.weight[0])
    with torch.no_grad():
        net.item.weight[2] += 100.0
        net.item_bias.weight[2] += 100.0
    f2, b2 = net.item_repr(items, tokens)
    assert torch.equal(f2[1], f[1]) and float(b2[1].detach()) == 0.0


def _planted(n_users=40, n_items=30, seed=0):
    """Two user groups; group g likes the items whose text uses word 3 + g."""
    rng = np.random.default_rng(seed)
    item_group = np.arange(n_items) % 2
    tokens = pad_tokens([[3 + g] + rng.integers(5, 9, size=3).tolist() for g in item_group])
    rows, cols = [], []
    for u in range(n_users):
        liked = rng.choice(np.flatnonzero(item_group == u % 2), size=6, replace=False)
        rows += [u] * 6
        cols += liked.tolist()
    return sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_users, n_items)), tokens, item_group


def test_fit_keeps_cold_embeddings_zero_and_learns_from_text():
    likes, tokens, group = _planted()
    known = np.ones(30, bool)
    known[-6:] = False  # cold items: no likes in training
    likes = sp.csr_matrix(likes.multiply(known[None, :]))
    likes.eliminate_zeros()
    tags = sp.csr_matrix(np.eye(2)[group])
    model = _recommender(mtl=True).fit(TextRecData(likes, tokens, 9, known=known, tags=tags))
    assert model.n_updates == 150 and model.curve.epochs == 3  # no validation split: the training loss decides
    w = model.net.item.weight.detach()
    assert torch.count_nonzero(w[torch.as_tensor(~known)]) == 0
    assert torch.count_nonzero(model.net.item_bias.weight.detach()[torch.as_tensor(~known)]) == 0
    # cold items of a user's own group rank above the other group's
    top = model.topk(np.arange(40), 3, candidates=np.flatnonzero(~known))
    agree = np.mean([group[top[u, 0]] == u % 2 for u in range(40)])
    assert agree >= 0.9
    assert model.tag_scores(np.flatnonzero(~known)).shape == (6, 2)


def test_negative_sampling_never_returns_a_liked_item():
    likes = sp.csr_matrix(np.array([[1, 1, 1, 0, 0], [0, 0, 0, 1, 1]]))
    keys = liked_pair_keys(likes)
    assert keys.tolist() == [0, 1, 2, 8, 9]
    rng = np.random.default_rng(0)
    users = np.repeat([0, 1], 200)
    neg = sample_unliked(users, np.arange(5), keys, 5, rng)
    assert set(neg[users == 0]) == {3, 4} and set(neg[users == 1]) == {0, 1, 2}
    # the pool restricts the draws (negatives only among items with an embedding)
    neg = sample_unliked(users, np.array([1, 3]), keys, 5, rng)
    assert set(neg[users == 0]) == {3} and set(neg[users == 1]) == {1}


def test_bad_input_errors():
    with pytest.raises(ValueError, match="encoder"):
        _recommender("lstm")
    likes, tokens, _ = _planted()
    with pytest.raises(ValueError, match="tags"):
        _recommender(mtl=True).fit(TextRecData(likes, tokens, 9))
    with pytest.raises(ValueError, match="rows"):
        _recommender().fit(TextRecData(likes, tokens[:5], 9))
    with pytest.raises(RuntimeError, match="not fitted"):
        _recommender().score(np.array([0]))


# ----------------------------------------------------------------------------- saliency
def test_saliency_equals_finite_difference_gradient_norms():
    """Independent computation: central finite differences of r_ij in float64."""
    net = _tiny_net("gru").double()
    tokens = np.array([1, 4, 2, 6])
    sal = word_saliency(net, user=1, item=0, tokens=tokens)
    emb0 = net.encoder.embed(torch.as_tensor(tokens).unsqueeze(0)).detach()  # (1, T, K_w)
    mask = torch.ones(1, len(tokens), dtype=torch.bool)

    def r(emb):
        with torch.no_grad():
            return float(net.rating_from_embeddings(torch.tensor([1]), torch.tensor([0]), emb, mask))

    h = 1e-6
    fd = np.zeros((len(tokens), emb0.shape[-1]))
    for t in range(len(tokens)):
        for d in range(emb0.shape[-1]):
            e1, e2 = emb0.clone(), emb0.clone()
            e1[0, t, d] += h
            e2[0, t, d] -= h
            fd[t, d] = (r(e1) - r(e2)) / (2 * h)
    assert sal == pytest.approx(np.linalg.norm(fd, axis=1), rel=1e-5, abs=1e-9)
    assert len(set(np.round(sal, 8))) > 1


def test_saliency_of_embed_model_closed_form():
    """For eq. (5), d r_ij / d e_t = u_i / n_j, so every word's saliency is ||u_i|| / n_j."""
    net = _tiny_net("embed")
    sal = word_saliency(net, user=0, item=2, tokens=np.array([1, 2, 3, 4, 5]))
    expected = float(net.user.weight[0].norm().detach()) / 5
    assert sal == pytest.approx([expected] * 5, rel=1e-5)


def test_model_saliency_uses_item_text():
    likes, tokens, _ = _planted(n_users=10, n_items=16)
    model = _recommender("gru", k=4, k_h1=3, batch_users=4, max_updates=2, updates_per_epoch=1).fit(TextRecData(likes, tokens, 9))
    sal = model.saliency(0, 3)
    assert sal.shape == ((tokens[3] != 0).sum(),)
    assert np.all(sal >= 0)


def test_saliency_browser_shows_the_picked_item_in_an_html_widget(monkeypatch):
    pytest.importorskip("ipywidgets")
    import IPython.display

    from xrec_core.experiments.gru import report

    rows = [{"model": "GRU", "user": u, "item": i, "liked": u == 1, "words": ["good", "paper"], "saliency": [0.2, 0.8]}
            for u, i in ((1, 20), (3, 40))]
    shown = []
    monkeypatch.setattr(IPython.display, "display", shown.append)
    report.show_saliency(rows)
    pick, view = shown[-1].children  # after the static renderings of both rows
    assert len(shown) == 3 and "recommended item 20" in view.value
    pick.value = 1  # a pick replaces the HTML (no Output widget to clear: papermill deadlocked on those)
    assert "recommended item 40" in view.value and "recommended item 20" not in view.value
