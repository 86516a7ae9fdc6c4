"""Parsers on hand-written fixtures in the real formats, registry errors, splits, and real-file counts."""

from __future__ import annotations

import gzip
import json
import os
import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xrec_core.data import (CorruptDataError, MissingDataError, check_dataset, load_citeulike, load_mter, load_peter,
                            load_reviews)
from xrec_core.data import registry, splits
from xrec_core.data.amazon import parse_amazon_json
from xrec_core.data.citeulike import build_citeulike
from xrec_core.data.mter import build_mter
from xrec_core.data.peter import parse_reviews_pickle, restricted_load
from xrec_core.data.stats import dataset_stats
from xrec_core.data.text import Vocabulary, documents_by, tokenize
from xrec_core.data.yelp import parse_tang_ss, parse_yelp_open

FIX = Path(__file__).resolve().parent / "fixtures" / "data"


def _write(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def _gz(src: Path, dst: Path) -> Path:
    dst.parent.mkdir(parents=True, exist_ok=True)
    with open(src, "rb") as f, gzip.open(dst, "wb") as g:
        g.write(f.read())
    return dst


# ----------------------------------------------------------------------------- parsers
def test_amazon_2014_and_2018_json_lines(tmp_path):
    df14 = parse_amazon_json(_gz(FIX / "amazon2014_sample.json", tmp_path / "a.json.gz"))
    assert list(df14.columns) == ["user", "item", "rating", "time", "text", "summary"]
    assert df14["rating"].tolist() == [5.0, 4.0, 3.0]
    assert df14["time"].tolist() == [1393545600, 1363392000, 1400000000]
    assert df14["text"].iloc[2] == "" and df14["summary"].iloc[0] == "good"
    df18 = parse_amazon_json(_gz(FIX / "amazon2018_sample.json", tmp_path / "b.json.gz"))
    assert df18["user"].tolist() == ["A31UBHTUUIFJUT", "A2"]
    assert df18["text"].tolist() == ["Another great gift.", ""]  # missing reviewText is an empty text


def test_amazon_2018_variant_copies_of_a_review_are_kept_once(tmp_path):
    """The 2018 files list one review under every variant of a product: keep its first copy only."""
    rng = np.random.default_rng(7)
    records = []
    for i in range(300):
        user, time = f"U{rng.integers(20)}", int(rng.integers(5)) * 86400
        text = ["", f"review {rng.integers(6)}"][int(rng.integers(1, 4) > 1)]  # a third have no text
        records.append({"reviewerID": user, "asin": f"B{i % 17}", "overall": float(rng.integers(1, 6)),
                        "unixReviewTime": time, "reviewText": text, "summary": "s"})
    path = tmp_path / "All_Beauty_5.json"
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    # independent computation: first occurrence of each (user, time, text), every row without text
    seen, expected = set(), []
    for r in records:
        key = (r["reviewerID"], r["unixReviewTime"], r["reviewText"])
        if r["reviewText"] and key in seen:
            continue
        seen.add(key)
        expected.append((r["reviewerID"], r["asin"], r["unixReviewTime"], r["reviewText"]))
    df = parse_amazon_json(path)
    assert len(expected) < len(records)  # the fixture has copies
    assert list(zip(df["user"], df["item"], df["time"], df["text"])) == expected


def test_review_copies_table_counts_copies_and_the_core_left(tmp_path):
    """The datasets page's table against counts computed here from the records written."""
    from xrec_core.data.audit import review_copies_table

    rng = np.random.default_rng(3)
    records = []
    for i in range(400):
        user, item = f"U{rng.integers(120)}", f"B{rng.integers(30)}"
        text = f"review {rng.integers(3)}"
        records.append({"reviewerID": user, "asin": item, "overall": 5.0, "unixReviewTime": int(rng.integers(4)),
                        "reviewText": text, "summary": "s"})
    _write(tmp_path / "mine" / "All_Beauty_5.json", "".join(json.dumps(r) + "\n" for r in records).encode())
    kept = pd.DataFrame(records).drop_duplicates(["reviewerID", "unixReviewTime", "reviewText"])
    core = kept
    while True:  # independent 3-core: drop users and items with fewer than 3 reviews until none is left
        n_user = core.groupby("reviewerID")["asin"].transform("size")
        n_item = core.groupby("asin")["reviewerID"].transform("size")
        smaller = core[(n_user >= 3) & (n_item >= 3)]
        if len(smaller) == len(core):
            break
        core = smaller
    row = review_copies_table(["mine/All_Beauty_5.json"], tmp_path, k_core=3).iloc[0]
    assert len(kept) < len(records) and 0 < len(core) < len(kept)  # the fixture has copies and a smaller core
    assert (row["rows in file"], row["reviews kept"], row["users"], row["items"]) == (
        len(records), len(kept), kept["reviewerID"].nunique(), kept["asin"].nunique())
    assert row["copies dropped (%)"] == pytest.approx(100 * (1 - len(kept) / len(records)), abs=0.05)
    assert (row["3-core: reviews"], row["3-core: users"], row["3-core: items"]) == (
        len(core), core["reviewerID"].nunique(), core["asin"].nunique())


def test_amazon_corrupt_line_is_named(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"reviewerID": "x"}\n')
    with pytest.raises(CorruptDataError, match="line 1"):
        parse_amazon_json(bad)


def test_yelp_tang_ss_and_open_dataset():
    ss = parse_tang_ss(FIX / "yelp_sample.ss")
    assert ss["user"].tolist() == ["u1", "u2", "u1"] and ss["rating"].tolist() == [4.0, 2.0, 5.0]
    assert ss["text"].iloc[0] == "great food . friendly staff ."  # <sssss> joined
    yo = parse_yelp_open(FIX / "yelp_open_sample.json")
    assert yo["item"].tolist() == ["B1", "B1"] and yo["time"].iloc[1] < yo["time"].iloc[0]


def test_citeulike_t_inverts_tag_item_and_reads_rawtext():
    d = build_citeulike("citeulike-t", FIX / "citeulike-t", has_item_tag=False, text_file=FIX / "citeulike-t" / "rawtext.dat")
    assert [x.tolist() for x in d.likes] == [[0, 2, 3], [1], [0, 1, 2, 3]]
    # tag-item.dat: tag0 -> items 0,3 ; tag1 -> item 1 ; tag2 -> items 0,1,2
    assert [x.tolist() for x in d.item_tags] == [[0, 2], [1, 2], [2], [0]]
    assert d.bow.toarray().tolist() == [[2, 1, 0, 0], [0, 0, 3, 0], [1, 0, 0, 1], [0, 4, 0, 0]]
    assert d.texts[1] == "protein folding"
    assert d.interactions().sum() == 8 and d.tag_matrix().shape == (4, 3)
    filtered = build_citeulike("citeulike-t", FIX / "citeulike-t", has_item_tag=False, text_file=None, min_user_likes=2)
    assert filtered.user_ids.tolist() == [0, 2] and filtered.texts is None


def test_citeulike_a_item_tag_and_one_based_raw_data():
    d = build_citeulike("citeulike-a", FIX / "citeulike-a", has_item_tag=True, text_file=FIX / "citeulike-a" / "raw-data.csv")
    assert [x.tolist() for x in d.item_tags] == [[0], [0, 1], []]
    assert d.texts[0].startswith("Topic Models We study") and d.texts[2] == "Bayes Priors and posteriors."


def test_citeulike_count_mismatch_is_corrupt(tmp_path):
    shutil.copytree(FIX / "citeulike-t", tmp_path / "c")
    (tmp_path / "c" / "users.dat").write_text("3 0 2\n")
    with pytest.raises(CorruptDataError, match="announces 3 ids but has 2"):
        build_citeulike("citeulike-t", tmp_path / "c", has_item_tag=False, text_file=None)


def test_mter_entry_and_maps_with_wrapped_titles():
    m = build_mter({ext: FIX / "mter" / f"sample.{ext}" for ext in ("entry", "featuremap", "wordmap", "usermap", "itemmap")})
    assert m.reviews["features"].tolist() == [[0, 1], [1], []]
    assert m.reviews["sentiments"].tolist() == [[1, 1], [-1], []]
    assert m.feature_names == ["screen", "battery"] and m.opinion_words == ["great", "poor"]
    assert m.item_titles == ["Screen Protector & Case", "Car Charger for Iphone, Galaxy"]


# ----------------------------------------------------------------------------- restricted unpickler
class _Evil:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_code_and_loads_plain_data(tmp_path):
    marker = tmp_path / "pwned"
    evil = tmp_path / "reviews.pickle"
    evil.write_bytes(pickle.dumps([_Evil(marker)]))
    with pytest.raises(CorruptDataError, match="refusing to load global (posix|nt).system"):
        restricted_load(evil)
    assert not marker.exists()  # the command never ran
    sneaky = tmp_path / "sneaky.pickle"  # a builtin that is not a plain container is refused too
    sneaky.write_bytes(b"cbuiltins\neval\n(V__import__('os').system('touch " + str(marker).encode() + b"')\ntR.")
    with pytest.raises(CorruptDataError, match="builtins.eval"):
        restricted_load(sneaky)
    assert not marker.exists()
    truncated = tmp_path / "truncated.pickle"
    truncated.write_bytes(pickle.dumps([{"user": "u"}])[:-3])
    with pytest.raises(CorruptDataError, match="truncated"):
        restricted_load(truncated)
    assert restricted_load(_write(tmp_path / "p2.pickle", pickle.dumps({1, 2}, protocol=2))) == {1, 2}
    good = tmp_path / "ok.pickle"
    good.write_bytes(pickle.dumps([{"user": "u", "item": "i", "rating": 5, "template": ("screen", "great", "the screen is great", 1),
                                    "predicted": "x"}]))
    df = parse_reviews_pickle(good)
    assert df.iloc[0].to_dict() == {"user": "u", "item": "i", "rating": 5.0, "text": "the screen is great",
                                    "feature": "screen", "adjective": "great", "sentiment": 1}


def _peter_folder(root: Path, n: int = 6) -> list[dict]:
    """A PETER dataset folder (reviews.pickle + 5 index splits) with ``n`` hand-written reviews."""
    reviews = [{"user": f"u{i % 3}", "item": f"i{i % 2}", "rating": float(1 + i % 5),
                "template": ("screen", "great", f"the screen is great {i}", 1), "predicted": ""} for i in range(n)]
    folder = root / "peter" / "Yelp"
    _write(folder / "reviews.pickle", pickle.dumps(reviews))
    for k in range(1, 6):
        rows = [(j + k) % n for j in range(n)]
        for part, idx in (("train", rows[:4]), ("validation", rows[4:5]), ("test", rows[5:])):
            _write(folder / str(k) / f"{part}.index", " ".join(map(str, idx)).encode())
    return reviews


def test_load_peter_reads_pickle_and_index_splits(tmp_path):
    reviews = _peter_folder(tmp_path)
    df, index = load_peter("peter-yelp", data_dir=tmp_path, split=2)
    assert df["text"].tolist() == [r["template"][2] for r in reviews]
    assert index == {"train": [2, 3, 4, 5], "validation": [0], "test": [1]}
    with pytest.raises(ValueError, match="split must be 1..5"):
        load_peter("peter-yelp", data_dir=tmp_path, split=6)
    _write(tmp_path / "peter" / "Yelp" / "3" / "test.index", b"1 99")
    with pytest.raises(CorruptDataError, match=r"must lie in \[0, 6\)"):
        load_peter("peter-yelp", data_dir=tmp_path, split=3)


def test_load_reviews_through_the_registry_for_ss_and_yelp_open(tmp_path):
    for part in ("train", "dev", "test"):
        dst = tmp_path / "yelp2013" / f"yelp-2013-seg-20-20.{part}.ss"
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(FIX / "yelp_sample.ss", dst)
    df = load_reviews("yelp2013", data_dir=tmp_path)
    assert len(df) == 9 and df["time"].tolist() == list(range(9))  # file order: train, dev, test
    shutil.copy(FIX / "yelp_open_sample.json", _write(tmp_path / "yelp-open" / "yelp_academic_dataset_review.json", b""))
    yo = load_reviews("yelp-open", data_dir=tmp_path)
    assert yo["time"].tolist() == [1531001351, 1325604498]  # 2018-07-07 22:09:11 / 2012-01-03 15:28:18 UTC


# ----------------------------------------------------------------------------- registry errors
def test_missing_file_error_names_file_checksum_and_source(tmp_path):
    with pytest.raises(MissingDataError) as err:
        load_reviews("amazon2014-instruments", data_dir=tmp_path)
    msg = str(err.value)
    assert "reviews_Musical_Instruments_5.json.gz" in msg
    assert "03f9cc27ae13a454cb4ea6cb620fb10546cc1194ef921441d1c5f34addff2748" in msg
    assert "snap.stanford.edu" in msg and "XREC_DATA" in msg


def test_corrupt_file_is_detected_by_checksum(tmp_path):
    _gz(FIX / "amazon2014_sample.json", tmp_path / "amazon2014" / "reviews_Musical_Instruments_5.json.gz")
    with pytest.raises(CorruptDataError, match="expected 03f9cc27"):
        load_reviews("amazon2014-instruments", data_dir=tmp_path)


def test_missing_text_file_is_named(data_dir):
    with pytest.raises(MissingDataError, match="rawtext.dat"):
        load_citeulike("citeulike-t", data_dir=data_dir, require_text=True)


def test_check_dataset_and_availability(tmp_path):
    spec = registry.DATASETS["amazon2018-giftcards"]
    assert not spec.available(tmp_path)
    with pytest.raises(MissingDataError, match="Gift_Cards_5.json.gz.*41e1f0e5.*jmcauley.ucsd.edu"):
        check_dataset("amazon2018-giftcards", data_dir=tmp_path)
    _gz(FIX / "amazon2018_sample.json", tmp_path / "amazon2018" / "Gift_Cards_5.json.gz")
    assert spec.available(tmp_path)
    assert check_dataset("amazon2018-giftcards", verify=False, data_dir=tmp_path)[0].name == "Gift_Cards_5.json.gz"
    with pytest.raises(CorruptDataError, match="expected 41e1f0e5"):
        check_dataset("amazon2018-giftcards", data_dir=tmp_path)
    table = registry.status(tmp_path).set_index("dataset")
    assert table.loc["amazon2018-giftcards", "present"] and not table.loc["amazon2018-allbeauty", "present"]
    assert "amazon_v2" in table.loc["amazon2018-allbeauty", "how to get"]
    with pytest.raises(KeyError, match="valid: amazon2014-instruments"):
        load_reviews("amazon2099", data_dir=tmp_path)


def test_every_dataset_has_source_and_files():
    for spec in registry.DATASETS.values():
        assert spec.files and spec.url and spec.how_to_get and spec.papers
    assert {"yelp2013", "yelp2014", "yelp-open", "peter-yelp", "citeulike-a", "amazon2014-grocery"} <= set(registry.DATASETS)


# ----------------------------------------------------------------------------- text
def test_tokenize_and_vocabulary():
    assert tokenize("I paid 12.50 dollars, didn't I?") == ["i", "paid", "<NUM>", "dollars", ",", "didn't", "i", "?"]
    vocab = Vocabulary.build([["a", "b", "a"], ["a", "c"]], min_freq=2)
    assert vocab.itos == ["<PAD>", "<UNK>", "<BOS>", "<EOS>", "<NUM>", "a"]
    ids = vocab.encode(["a", "zzz"], add_bos=True, add_eos=True)
    assert ids == [2, 5, 1, 3] and vocab.decode(ids) == ["a", "<UNK>"]


def test_vocabulary_max_size_and_stats_by_hand():
    import pandas as pd

    vocab = Vocabulary.build([["b", "a", "b", "c", "c", "b"]], max_size=7)
    assert vocab.itos[5:] == ["b", "c"] and len(vocab) == 7  # most frequent first, ties alphabetical
    df = pd.DataFrame({"user": ["u", "u", "v"], "item": ["a", "b", "a"], "rating": [5.0, 3.0, 4.0],
                       "text": ["good one", "bad, 2 stars", ""]})
    row = dataset_stats(df, "x").iloc[0]
    assert (row["users"], row["items"], row["reviews"]) == (2, 2, 3)
    assert row["density %"] == pytest.approx(75.0) and row["mean rating"] == pytest.approx(4.0)
    assert row["words / review"] == pytest.approx((2 + 3 + 0) / 3)  # "bad", "<NUM>", "stars"


def test_documents_by_are_chronological():
    import pandas as pd

    df = pd.DataFrame({"user": ["u", "u", "v"], "item": ["a", "b", "a"], "time": [5, 1, 3], "text": ["late", "early", "x"]})
    assert documents_by(df, "user")["u"] == ["early", "late"]


# ----------------------------------------------------------------------------- splits
def test_kfold_partitions_rows():
    folds = splits.kfold(23, 5, seed=1)
    tests = np.concatenate([te for _, te in folds])
    assert sorted(tests.tolist()) == list(range(23))
    for tr, te in folds:
        assert not set(tr) & set(te) and len(tr) + len(te) == 23


def test_temporal_split_has_no_future_in_training():
    times = np.array([5, 1, 9, 3, 3, 7, 2, 8, 6, 4])
    tr, te = splits.temporal_split(times, 0.8)
    assert len(tr) == 8 and times[tr].max() <= times[te].min()
    tied = np.array([1, 2, 2, 2, 3])
    assert splits.temporal_split(tied, 0.6)[0].tolist() == [0, 1, 2]  # ties broken by row order


def test_n_before_counts_strictly_earlier_reviews():
    rng = np.random.default_rng(3)
    keys, times = rng.integers(0, 4, 60), rng.integers(0, 10, 60)
    brute = [int(np.sum((keys == keys[j]) & (times < times[j]))) for j in range(60)]
    assert splits.n_before(keys, times).tolist() == brute


def test_warm_and_cold_start_folds():
    rng = np.random.default_rng(0)
    likes = [rng.choice(20, size=n, replace=False) for n in (3, 10, 12, 4, 15, 14, 16)]
    popular = np.bincount(np.concatenate(likes), minlength=20) >= 5
    folds = splits.warm_start_folds(likes, k=5, seed=0, min_likes=5)
    for u, items in enumerate(likes):
        tests = np.concatenate([f[1][u] for f in folds])
        if len(items) < 5:
            assert len(tests) == 0 and all(set(f[0][u]) == set(items) for f in folds)
        else:  # every like of a popular paper is tested exactly once
            assert sorted(tests.tolist()) == sorted(items[popular[items]].tolist()) and len(tests)
            assert all(not set(f[0][u]) & set(f[1][u]) for f in folds)
    for train_items, test_items in splits.cold_start_folds(40, 5, seed=0):
        assert not set(train_items) & set(test_items)


def test_papers_with_few_likes_stay_in_training():
    # items 9 (2 likes) and 5 (4 likes): never warm- or cold-start test items at min_likes=5
    likes = [np.array([0, 1, 2, 3, 4, 9]), np.array([0, 1, 2, 3, 4, 5, 9]), np.array([0, 1, 2, 3, 4, 5]),
             np.array([0, 1, 2, 3, 4, 5]), np.array([0, 1, 2, 3, 4, 5])]
    for train, test in splits.warm_start_folds(likes, k=5, seed=0, min_likes=5):
        assert all(9 not in t and 5 not in t for t in test) and 9 in train[0] and 5 in train[1]
        assert all(np.array_equal(np.sort(np.r_[a, b]), np.sort(x)) for a, b, x in zip(train, test, likes))
    counts = np.bincount(np.concatenate(likes), minlength=10)
    folds = splits.cold_start_folds(10, k=3, seed=0, item_likes=counts, min_likes=5)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == [0, 1, 2, 3, 4]  # item 5 has 4 likes
    for train_items, test_items in folds:
        assert 9 in train_items and not set(train_items) & set(test_items)


def test_per_user_holdout_and_candidates_exclude_positives():
    rng = np.random.default_rng(0)
    user_items = [rng.choice(200, size=n, replace=False) for n in (3, 6, 10, 40)]
    train, test, kept = splits.per_user_holdout(user_items, 0.8, min_positives=5, seed=0)
    assert kept.tolist() == [1, 2, 3]
    assert [len(t) for t in train] == [5, 8, 32] and [len(t) for t in test] == [1, 2, 8]
    cands = splits.sample_candidates([user_items[u] for u in kept], 200, n=100, seed=0)
    for row, u in zip(cands, kept):
        assert len(set(row)) == 100 and not set(row) & set(user_items[u])
    assert np.array_equal(cands, splits.sample_candidates([user_items[u] for u in kept], 200, n=100, seed=0))
    with pytest.raises(ValueError, match="only 160 non-positive items"):
        splits.sample_candidates([user_items[3]], 200, n=161, seed=0)


# ----------------------------------------------------------------------------- the real files
@pytest.mark.real_data
def test_real_dataset_counts(data_dir):
    df = load_reviews("amazon2014-instruments", data_dir)
    assert (len(df), df["user"].nunique(), df["item"].nunique()) == (10261, 1429, 900)
    # the files' 5269 and 2972 lines, less the copies of a review under other variants of a product
    assert len(load_reviews("amazon2018-allbeauty", data_dir)) == 1383
    assert len(load_reviews("amazon2018-giftcards", data_dir)) == 2160
    assert load_citeulike("citeulike-t", data_dir, min_user_likes=5).n_users == 5219
    assert sum(len(x) for x in load_citeulike("citeulike-a", data_dir).likes) == 204986
    m = load_mter("mter-cellphones", data_dir)
    assert (len(m.reviews), m.n_users, m.n_items, len(m.feature_names)) == (75407, 10561, 13428, 101)
    stats = dataset_stats(df, "instruments").iloc[0]
    assert stats["reviews"] == 10261 and stats["density %"] == pytest.approx(100 * 10261 / (1429 * 900))


@pytest.mark.real_data
def test_status_verifies_checksums_of_present_data(data_dir):
    table = registry.status(data_dir, verify=True).set_index("dataset")
    for name in ("amazon2014-instruments", "amazon2018-allbeauty", "citeulike-t", "mter-cellphones"):
        assert table.loc[name, "present"] and table.loc[name, "checksums"] == "ok"
    assert not table.loc["yelp2013", "present"]


def _k_core_one_at_a_time(pairs: set[tuple[int, int]], k: int) -> set[tuple[int, int]]:
    """Reference: drop one user or item with fewer than ``k`` pairs at a time (the k-core is unique)."""
    from collections import Counter

    pairs = set(pairs)
    while True:
        users, items = Counter(u for u, _ in pairs), Counter(i for _, i in pairs)
        weak = next(((u, None) for u, n in users.items() if n < k), None) or \
            next(((None, i) for i, n in items.items() if n < k), None)
        if weak is None:
            return pairs
        pairs = {(u, i) for u, i in pairs if u != weak[0] and i != weak[1]}


def test_k_core_equals_removing_one_weak_user_or_item_at_a_time():
    import pandas as pd

    from xrec_core.data.stats import k_core

    rng = np.random.default_rng(3)
    pairs = {(int(u), int(i)) for u, i in zip(rng.integers(0, 15, 120), rng.integers(0, 10, 120))}
    df = pd.DataFrame(sorted(pairs), columns=["user", "item"])
    sizes = []
    for k in (2, 3, 4, 5):
        core = k_core(df, k)
        assert set(map(tuple, core[["user", "item"]].to_numpy().tolist())) == _k_core_one_at_a_time(pairs, k)
        sizes.append(len(core))
    assert sizes[0] > sizes[-1] > 0 or sizes[-1] == 0
    assert len(set(sizes)) > 1  # the cut bites at some k on this sample
    assert k_core(df, 1) is df
