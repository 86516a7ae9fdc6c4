"""Opinosis on hand-made review sets whose best paths are known."""

from __future__ import annotations

import json
import math

import pytest

from xrec_core.models.opinosis import Opinosis, split_sentences


@pytest.fixture
def item_reviews(fixtures_dir):
    rows = [json.loads(line) for line in (fixtures_dir / "mtbase" / "reviews_toy.json").open()]
    by_item: dict[str, list[str]] = {}
    for r in rows:
        by_item.setdefault(r["asin"], []).append(r["reviewText"])
    return by_item


def test_sentence_splitting_keeps_punctuation():
    assert split_sentences(["Great tuner. Works well!", "no period"]) == [
        ["great", "tuner", "."], ["works", "well", "!"], ["no", "period", "."]]


def test_graph_positional_reference_lists():
    edges, pri = Opinosis().build_graph([["the", "sound", "is", "great", "."], ["the", "sound", "is", "clear", "."]])
    assert dict(pri["is"]) == {0: [2], 1: [2]}
    assert edges["is"] == {"great", "clear"}


def test_most_redundant_path_is_the_summary(item_reviews):
    # Path "the strap is comfortable ." and its redundancy (supporting sentences within gap 3):
    # "the strap" 4, "is" 4, "comfortable" 3 ("is really comfortable" is within the gap),
    # "." 2 (review 2 goes on with "and cheap !"). No other valid path keeps support >= 2.
    summarizer = Opinosis()
    assert summarizer.summarize(item_reviews["B01"]) == "the strap is comfortable ."
    best = summarizer.candidates(item_reviews["B01"])[0]
    expected = (math.log2(2) * 4 + math.log2(3) * 4 + math.log2(4) * 3 + math.log2(5) * 2) / 5  # Opinosis_wt
    assert best.words == ["the", "strap", "is", "comfortable", "."]
    assert best.score == pytest.approx(expected, rel=1e-12)


def test_collapsible_node_stitches_distinct_continuations(item_reviews):
    # anchor "the sound is" (4 sentences), continuations "great ." (2) and "clear ." (2)
    assert Opinosis().summarize(item_reviews["B02"]) == "the sound is clear and great ."
    assert Opinosis().summarize(item_reviews["B02"], max_words=4) == "the sound is clear"


def test_redundancy_and_gap_thresholds():
    texts = ["the sound is great .", "the sound is great ."]
    assert Opinosis(sigma_r=2).summarize(texts) == "the sound is great ."
    assert Opinosis(sigma_r=3, relax=False).summarize(texts) == ""
    assert Opinosis(sigma_r=3, relax=True).summarize(texts) == "the sound is great ."  # sigma_r lowered to 2
    # the second sentence supports "the sound is" only with a gap of 3 ("sound really truly is")
    gap = ["the sound is great .", "the sound really truly is great ."]
    assert Opinosis(sigma_gap=2, relax=False).summarize(gap) == ""
    assert Opinosis(sigma_gap=3, relax=False).summarize(gap) == "the sound is great ."


def test_path_ending_at_a_comma_is_closed_as_a_sentence():
    texts = ["The tuner works well, and the strap is fine.", "The tuner works well, but shipping was slow."]
    assert Opinosis().summarize(texts) == "the tuner works well ."


def test_bad_input_is_rejected():
    with pytest.raises(TypeError, match="list of review strings"):
        Opinosis().summarize("one string")
    with pytest.raises(ValueError, match="sigma_r"):
        Opinosis(sigma_r=0)
