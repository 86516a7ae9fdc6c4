"""Text-generation metrics for explanation generation (MVAE chapter, PETER/NETE protocol).

Which implementation computes what:

* **BLEU-1, BLEU-4** -- ``sacrebleu.metrics.BLEU`` (corpus BLEU, ``max_ngram_order`` 1 or 4,
  ``tokenize="none"`` on our own tokens, no smoothing; the same definition as the
  ``compute_bleu`` of the PETER code). In percent.
* **ROUGE-1, ROUGE-L** precision / recall / F1 -- Google's ``rouge-score`` package
  (``RougeScorer(["rouge1", "rougeL"])``), computed per sentence pair and averaged over pairs as
  PETER does. In percent.
* **METEOR** -- METEOR 1.5 (the Java jar shipped with ``pycocoevalcap``), called once for all
  pairs; the jar's aggregate score. In percent. Needs ``java`` on the PATH.
* **FMR, FCR, DIV, USR** -- PETER's feature-based explainability metrics (Li et al. 2021):
  hand-rolled here because no package implements them; each is a few lines of counting.
  DIV uses the pair-count identity :func:`feature_diversity` (exact, O(N)) instead of PETER's
  O(N^2) double loop.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

Tokens = Sequence[str]


def _check_pairs(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> None:
    if len(references) != len(hypotheses):
        raise ValueError(f"references ({len(references)}) and hypotheses ({len(hypotheses)}) differ in length")
    if not references:
        raise ValueError("no sentence pairs to score")


def bleu(references: Sequence[Tokens], hypotheses: Sequence[Tokens], n: int = 4) -> float:
    """Corpus BLEU-``n`` in percent (sacrebleu, no smoothing, our tokenisation kept)."""
    from sacrebleu.metrics import BLEU

    _check_pairs(references, hypotheses)
    scorer = BLEU(max_ngram_order=n, tokenize="none", smooth_method="none", effective_order=False)
    hyps = [" ".join(h) for h in hypotheses]
    refs = [[" ".join(r) for r in references]]
    return float(scorer.corpus_score(hyps, refs).score)


def rouge(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> dict[str, float]:
    """ROUGE-1 and ROUGE-L precision/recall/F1 in percent, averaged over sentence pairs (rouge-score).

    Returns keys ``ROUGE-1-P``, ``ROUGE-1-R``, ``ROUGE-1-F``, ``ROUGE-L-P``, ``ROUGE-L-R``, ``ROUGE-L-F``.
    """
    from rouge_score import rouge_scorer

    _check_pairs(references, hypotheses)
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)
    sums = np.zeros(6)
    for ref, hyp in zip(references, hypotheses):
        s = scorer.score(" ".join(ref), " ".join(hyp))
        sums += [s["rouge1"].precision, s["rouge1"].recall, s["rouge1"].fmeasure,
                 s["rougeL"].precision, s["rougeL"].recall, s["rougeL"].fmeasure]
    mean = 100.0 * sums / len(references)
    keys = ["ROUGE-1-P", "ROUGE-1-R", "ROUGE-1-F", "ROUGE-L-P", "ROUGE-L-R", "ROUGE-L-F"]
    return dict(zip(keys, map(float, mean)))


def rouge_per_pair(references: Sequence[Tokens], hypotheses: Sequence[Tokens], kind: str = "rougeL") -> np.ndarray:
    """Per-pair ROUGE F1 in percent (for the per-user curves of Fig. 5)."""
    from rouge_score import rouge_scorer

    _check_pairs(references, hypotheses)
    scorer = rouge_scorer.RougeScorer([kind], use_stemmer=False)
    return np.array([100.0 * scorer.score(" ".join(r), " ".join(h))[kind].fmeasure for r, h in zip(references, hypotheses)])


def bleu1_per_pair(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> np.ndarray:
    """Sentence BLEU-1 in percent for each pair (sacrebleu ``sentence_score``), for Fig. 5."""
    from sacrebleu.metrics import BLEU

    _check_pairs(references, hypotheses)
    scorer = BLEU(max_ngram_order=1, tokenize="none", smooth_method="none", effective_order=True)
    return np.array([scorer.sentence_score(" ".join(h), [" ".join(r)]).score for r, h in zip(references, hypotheses)])


def _meteor_clean(tokens: Tokens) -> str:
    # METEOR's stdin protocol uses "|||" and newlines as separators.
    text = " ".join(tokens).replace("|||", " ").replace("\n", " ").strip()
    return text or "."


def _meteor_call(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> tuple[float, np.ndarray]:
    from pycocoevalcap.meteor.meteor import Meteor

    _check_pairs(references, hypotheses)
    gts = {i: [_meteor_clean(r)] for i, r in enumerate(references)}
    res = {i: [_meteor_clean(h)] for i, h in enumerate(hypotheses)}
    scorer = Meteor()
    score, segments = scorer.compute_score(gts, res)
    del scorer  # its __del__ stops the JVM
    return 100.0 * float(score), 100.0 * np.asarray(segments, dtype=float)


def meteor(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> float:
    """METEOR 1.5 in percent (pycocoevalcap's Java jar, one JVM for all pairs): the jar's aggregate score."""
    return _meteor_call(references, hypotheses)[0]


def meteor_segments(references: Sequence[Tokens], hypotheses: Sequence[Tokens]) -> np.ndarray:
    """METEOR 1.5 segment (sentence) scores in percent, one JVM call for all pairs.

    The chapter scores all models of a split in one call and reports each model's mean segment
    score, because a JVM start per model costs more than the scoring itself on a CPU.
    """
    return _meteor_call(references, hypotheses)[1]


def feature_matching_ratio(hypotheses: Sequence[Tokens], features: Sequence[str]) -> float:
    """FMR: share of generated sentences that contain their ground-truth feature (PETER)."""
    if len(hypotheses) != len(features) or not features:
        raise ValueError("FMR needs one feature per generated sentence")
    return float(np.mean([f in set(h) for h, f in zip(hypotheses, features)]))


def _feature_sets(hypotheses: Iterable[Tokens], feature_vocab: set[str]) -> list[set[str]]:
    return [set(h) & feature_vocab for h in hypotheses]


def feature_coverage_ratio(hypotheses: Sequence[Tokens], feature_vocab: Iterable[str]) -> float:
    """FCR: distinct features generated / number of features in the feature vocabulary (PETER)."""
    vocab = set(feature_vocab)
    if not vocab:
        raise ValueError("empty feature vocabulary")
    generated = set().union(*_feature_sets(hypotheses, vocab)) if hypotheses else set()
    return len(generated) / len(vocab)


def feature_diversity(hypotheses: Sequence[Tokens], feature_vocab: Iterable[str]) -> float:
    """DIV: mean size of the intersection of the feature sets of two generated sentences (lower = more diverse).

    PETER averages ``|F_i & F_j|`` over all pairs ``i < j``; since
    ``sum_{i<j} |F_i & F_j| = sum_f C(c_f, 2)`` with ``c_f`` the number of sentences containing
    feature ``f``, the exact value is computed in O(N).
    """
    n = len(hypotheses)
    if n < 2:
        raise ValueError("DIV needs at least two sentences")
    counts = Counter(f for s in _feature_sets(hypotheses, set(feature_vocab)) for f in s)
    pairs_sharing = sum(c * (c - 1) / 2 for c in counts.values())
    return float(pairs_sharing / (n * (n - 1) / 2))


def distinct_sentences(hypotheses: Sequence[Tokens]) -> int:
    """How many different token sequences ``hypotheses`` holds."""
    return len({tuple(h) for h in hypotheses})


def unique_sentence_ratio(hypotheses: Sequence[Tokens]) -> float:
    """USR: distinct generated sentences / generated sentences (PETER)."""
    if not hypotheses:
        raise ValueError("no sentences")
    return distinct_sentences(hypotheses) / len(hypotheses)


def text_metrics(references: Sequence[Tokens], hypotheses: Sequence[Tokens], *, with_meteor: bool = True,
                 meteor_max_pairs: int | None = None, seed: int = 0) -> dict[str, float]:
    """The paper's Table 2 metrics (percent): BLEU-1, BLEU-4, ROUGE-1/L P/R/F and METEOR.

    ``meteor_max_pairs`` scores METEOR on a fixed random subset of that many pairs (used at
    smoke scale, where the JVM start-up dominates); ``None`` scores every pair.
    """
    out = {"BLEU-1": bleu(references, hypotheses, 1), "BLEU-4": bleu(references, hypotheses, 4)}
    out.update(rouge(references, hypotheses))
    if with_meteor:
        idx = np.arange(len(references))
        if meteor_max_pairs is not None and len(idx) > meteor_max_pairs:
            idx = np.sort(np.random.default_rng(seed).choice(idx, meteor_max_pairs, replace=False))
        out["METEOR"] = meteor([references[i] for i in idx], [hypotheses[i] for i in idx])
    return out


def explainability_metrics(hypotheses: Sequence[Tokens], features: Sequence[str], feature_vocab: Iterable[str]) -> dict[str, float]:
    """PETER's FMR, FCR, DIV and USR on generated sentences."""
    vocab = set(feature_vocab)
    return {"FMR": feature_matching_ratio(hypotheses, features), "FCR": feature_coverage_ratio(hypotheses, vocab),
            "DIV": feature_diversity(hypotheses, vocab), "USR": unique_sentence_ratio(hypotheses)}
