"""Text metrics of the MVAE chapter against independent computations (nltk BLEU, hand-computed ROUGE/PETER metrics)."""

from __future__ import annotations

import itertools
import math
import shutil

import numpy as np
import pytest

from xrec_core.metrics import text as tm

REFS = [s.split() for s in ["the sound is great and the strap is nice", "this cable is very solid for the price",
                            "the strings sound bright and warm", "great pedal , the tone is clear"]]
HYPS = [s.split() for s in ["the sound is great", "this cable is solid and cheap for the price",
                            "the strings are bright", "the tone is clear and great"]]


@pytest.mark.parametrize("n", [1, 4])
def test_bleu_matches_nltk(n):
    from nltk.translate.bleu_score import corpus_bleu

    weights = tuple([1.0 / n] * n)
    expected = 100 * corpus_bleu([[r] for r in REFS], HYPS, weights=weights)
    assert tm.bleu(REFS, HYPS, n) == pytest.approx(expected, rel=1e-9)


def test_bleu1_hand_computed():
    # every hypothesis word matches (p1 = 1); brevity penalty exp(1 - 6/3)
    assert tm.bleu([["the", "cat", "sat", "on", "the", "mat"]], [["the", "cat", "sat"]], 1) == pytest.approx(100 * math.exp(-1))


def test_rouge_hand_computed():
    out = tm.rouge([["the", "sound", "is", "great"], ["a", "b", "c", "d"]],
                   [["the", "sound", "quality", "is", "great"], ["d", "c", "b", "a"]])
    # pair 1: 4 common unigrams, LCS 4 -> P 4/5, R 1; pair 2: unigrams P = R = 1, LCS 1 -> 1/4
    f1 = 2 * 0.8 / 1.8
    assert out["ROUGE-1-P"] == pytest.approx(100 * (0.8 + 1) / 2)
    assert out["ROUGE-1-R"] == pytest.approx(100.0)
    assert out["ROUGE-1-F"] == pytest.approx(100 * (f1 + 1) / 2)
    assert out["ROUGE-L-P"] == pytest.approx(100 * (0.8 + 0.25) / 2)
    assert out["ROUGE-L-R"] == pytest.approx(100 * (1 + 0.25) / 2)
    assert out["ROUGE-L-F"] == pytest.approx(100 * (f1 + 0.25) / 2)


def test_rouge_matches_rouge_score_package():
    from rouge_score import rouge_scorer

    sc = rouge_scorer.RougeScorer(["rouge1", "rougeL"])
    per = [sc.score(" ".join(r), " ".join(h)) for r, h in zip(REFS, HYPS)]
    out = tm.rouge(REFS, HYPS)
    assert out["ROUGE-L-F"] == pytest.approx(100 * np.mean([p["rougeL"].fmeasure for p in per]))
    assert out["ROUGE-1-P"] == pytest.approx(100 * np.mean([p["rouge1"].precision for p in per]))
    assert tm.rouge_per_pair(REFS, HYPS).mean() == pytest.approx(out["ROUGE-L-F"])


def test_sentence_bleu1_per_pair():
    # "the tone is clear and great" vs "great pedal , the tone is clear": 5 of 6 words match, BP exp(1 - 7/6)
    b = tm.bleu1_per_pair(REFS, HYPS)
    assert b[3] == pytest.approx(100 * 5 / 6 * math.exp(1 - 7 / 6))


def test_feature_metrics_hand_and_brute_force():
    hyps = [["the", "sound", "is", "great"], ["nice", "strap", "and", "sound"], ["the", "sound", "is", "great"], ["ok"]]
    feats = ["sound", "cable", "sound", "price"]
    vocab = {"sound", "strap", "cable", "price"}
    assert tm.feature_matching_ratio(hyps, feats) == pytest.approx(0.5)
    assert tm.feature_coverage_ratio(hyps, vocab) == pytest.approx(2 / 4)
    assert tm.unique_sentence_ratio(hyps) == pytest.approx(3 / 4)
    assert tm.distinct_sentences(hyps) == 3 and tm.distinct_sentences([["a", "b"], ["b", "a"]]) == 2  # order counts
    sets = [set(h) & vocab for h in hyps]
    brute = np.mean([len(a & b) for a, b in itertools.combinations(sets, 2)])
    assert tm.feature_diversity(hyps, vocab) == pytest.approx(brute)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="differ in length"):
        tm.bleu([["a"]], [["a"], ["b"]])
    with pytest.raises(ValueError, match="no sentence pairs"):
        tm.rouge([], [])


@pytest.mark.skipif(shutil.which("java") is None, reason="METEOR 1.5 needs java")
def test_meteor_one_jvm_for_all_pairs():
    refs = REFS + [["identical", "sentence", "here"]]
    hyps = HYPS + [["identical", "sentence", "here"]]
    seg = tm.meteor_segments(refs, hyps)
    assert seg.shape == (5,)
    assert seg[-1] > 90  # an exact match scores close to 100 (fragmentation penalty only)
    assert np.all((seg >= 0) & (seg <= 100))
    assert seg[0] > seg[2]  # "the sound is great" shares more with its reference than "the strings are bright"
