"""Ranking and rating metrics against hand-computed cases and independent formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from xrec_core.metrics import ranking as R
from xrec_core.metrics.rating import mae, mse, rmse


@pytest.fixture
def case():
    # user 0 ranks items 0 > 2 > 3 > 1 ; user 1 ranks 1 > 3 > 0 > 2
    scores = np.array([[0.9, 0.1, 0.5, 0.3], [0.2, 0.8, 0.1, 0.7]])
    return scores, [[2, 3], [0]]


def test_topk_excludes_training_items_and_breaks_ties_by_id():
    scores = np.array([[1.0, 1.0, 0.5, 1.0]])
    assert R.topk_items(scores, 3).tolist() == [[0, 1, 3]]
    assert R.topk_items(scores, 2, exclude=sp.csr_matrix([[1, 0, 0, 0]])).tolist() == [[1, 3]]


def test_hand_computed_values(case):
    scores, rel = case
    top = R.topk_items(scores, 4)
    assert top.tolist() == [[0, 2, 3, 1], [1, 3, 0, 2]]
    assert R.recall_at_k(top, rel, 2).tolist() == [0.5, 0.0]
    assert R.recall_at_k(top, rel, 3).tolist() == [1.0, 1.0]
    assert R.precision_at_k(top, rel, 2).tolist() == [0.5, 0.0]
    assert R.hit_at_k(top, rel, 2).tolist() == [1.0, 0.0]
    assert R.mrr_at_k(top, rel, 4).tolist() == [0.5, pytest.approx(1 / 3)]
    # user 0: hits at ranks 2 and 3 -> DCG = 1/log2(3) + 1/log2(4); IDCG = 1 + 1/log2(3)
    expected0 = (1 / math.log2(3) + 1 / math.log2(4)) / (1 + 1 / math.log2(3))
    expected1 = (1 / math.log2(4)) / 1.0
    assert R.ndcg_at_k(top, rel, 3) == pytest.approx([expected0, expected1])
    f1 = R.f1_at_k(top, rel, 3)
    assert f1[0] == pytest.approx(2 * (2 / 3) * 1 / (2 / 3 + 1))


def test_recall_curve_is_the_mean_of_recall_at_each_k(case):
    scores, rel = case
    top = R.topk_items(scores, 4)
    curve = R.recall_curve(top, rel, [1, 2, 3, 4])
    for i, k in enumerate([1, 2, 3, 4]):
        assert curve[i] == pytest.approx(np.mean(R.recall_at_k(top, rel, k)))


def test_users_without_relevant_items_are_skipped():
    top = np.array([[0, 1], [1, 0]])
    values = R.recall_at_k(top, [[0], []], 1)
    assert values[0] == 1.0 and np.isnan(values[1])
    assert R.mean_over_users(values) == 1.0


def test_rating_errors_match_numpy():
    rng = np.random.default_rng(0)
    y, p = rng.uniform(1, 5, 50), rng.uniform(1, 5, 50)
    assert mse(y, p) == pytest.approx(np.mean((y - p) ** 2))
    assert rmse(y, p) == pytest.approx(np.sqrt(np.mean((y - p) ** 2)))
    assert mae(y, p) == pytest.approx(np.mean(np.abs(y - p)))
