"""Issue 16: any review dataset a user has.

Every file here is generated (:mod:`xrec_core.data.synthetic`) under the test's temporary folder:
each format is detected and read, column-map and format errors are one line, Amazon files in the
layout get derived names and are listed by ``data status``, filters stream, chapters accept data by
the fields it holds, records name the file relative to the data folder with size and checksum, and
the scorecard lists such runs under "your data".
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from xrec_core.cli import main
from xrec_core.config import ConfigError
from xrec_core.data import DatasetError, ReviewFilter, dataset_fields, dataset_files, load_reviews, resolve
from xrec_core.data.synthetic import generate_reviews, write_reviews

REPO = Path(__file__).resolve().parent.parent
CATEGORY = "amazon2018/Magazine_Subscriptions_5.json.gz"
DERIVED = "amazon2018-magazine-subscriptions"
TABLE_MAP = "user=reviewer,item=product,rating=stars,text=body,time=date,tags=labels,item_text=title"


@pytest.fixture
def reviews() -> pd.DataFrame:
    return generate_reviews(1500, seed=7)


@pytest.fixture
def user_data(tmp_path, reviews) -> Path:
    """A data folder with one generated Amazon 2018 category the registry has never seen."""
    root = tmp_path / "data"
    write_reviews(root / CATEGORY, "amazon2018", df=reviews)
    return root


# ----------------------------------------------------------------------------- formats
@pytest.mark.parametrize("fmt, rel, options, kind", [
    ("amazon2014", "mine/a14.json.gz", "", "amazon"),
    ("amazon2018", "mine/a18.json", "", "amazon"),
    ("yelp-open", "mine/yelp_review.json", "", "yelp-open"),
    ("tang-ss", "mine/tang.train.ss", "", "yelp-ss"),
    ("csv", "mine/reviews.csv", TABLE_MAP, "table"),
    ("csv", "mine/reviews.csv.gz", TABLE_MAP, "table"),
    ("tsv", "mine/reviews.tsv", TABLE_MAP, "table"),
    ("jsonl", "mine/reviews.jsonl", TABLE_MAP, "table"),
    ("parquet", "mine/reviews.parquet", TABLE_MAP, "table"),
])
def test_each_format_is_detected_from_content_and_read(tmp_path, reviews, fmt, rel, options, kind):
    write_reviews(tmp_path / rel, fmt, df=reviews)
    name = rel + (f"#{options}" if options else "")
    source = resolve(name, tmp_path)
    assert source.kind == kind and source.name == name
    df = load_reviews(name, tmp_path)
    assert list(df.columns[:6]) == ["user", "item", "rating", "time", "text", "summary"]
    assert df["user"].tolist() == reviews["user"].tolist() and df["item"].tolist() == reviews["item"].tolist()
    assert df["rating"].tolist() == reviews["rating"].tolist()
    if kind == "yelp-ss":  # no timestamps: file order, and no "time" field
        assert df["time"].tolist() == list(range(len(df))) and "time" not in source.fields
        assert df["text"].tolist() == reviews["text"].str.replace(". ", " ", regex=False).tolist()  # sentences joined
    else:
        assert df["time"].tolist() == reviews["time"].tolist() and df["text"].tolist() == reviews["text"].tolist()
    if kind == "table":
        assert set(source.fields) == {"rating", "text", "time", "tags", "item_text"}
        assert df["tags"].tolist() == reviews["tags"].tolist() and df["item_text"].iloc[3] == reviews["item_text"].iloc[3]


def test_absolute_path_is_stored_relative_to_the_data_folder(tmp_path, reviews):
    path = write_reviews(tmp_path / "mine" / "r.jsonl", "jsonl", df=reviews)
    assert resolve(f"{path}#{TABLE_MAP}", tmp_path).name == f"mine/r.jsonl#{TABLE_MAP}"
    outside = write_reviews(tmp_path.parent / f"{tmp_path.name}_elsewhere.json", "amazon2014", n_reviews=20)
    with pytest.raises(DatasetError, match="outside the data folder"):
        resolve(str(outside), tmp_path)


def test_column_map_from_a_yaml_file_beside_the_data_or_a_parameter(tmp_path, reviews):
    path = write_reviews(tmp_path / "shop" / "reviews.tsv", "tsv", df=reviews)
    Path(str(path) + ".yaml").write_text("columns:\n  user: reviewer\n  item: product\n  rating: stars\n  text: body\n")
    source = resolve("shop/reviews.tsv", tmp_path)
    assert source.name == "shop/reviews.tsv" and source.fields == ("rating", "text")
    assert [p.name for p in dataset_files("shop/reviews.tsv", tmp_path)] == ["reviews.tsv", "reviews.tsv.yaml"]
    df = load_reviews("shop/reviews.tsv", tmp_path, columns={"user": "reviewer", "item": "product", "rating": "stars",
                                                             "text": "body", "time": "date"})
    assert df["time"].tolist() == reviews["time"].tolist()
    # columns named after the roles need no map
    write_reviews(tmp_path / "plain.parquet", "parquet", df=reviews)
    pd.read_parquet(tmp_path / "plain.parquet").rename(
        columns={"reviewer": "user", "product": "item", "stars": "rating", "body": "text"}).to_parquet(tmp_path / "plain.parquet")
    assert resolve("plain.parquet", tmp_path).fields == ("rating", "text")


def test_column_map_errors_are_one_line(tmp_path, reviews):
    write_reviews(tmp_path / "shop" / "reviews.csv", "csv", df=reviews)
    with pytest.raises(DatasetError) as err:
        resolve("shop/reviews.csv#user=reviewer,item=product,rating=stars,text=comment", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "'comment' for text" in msg and "reviewer, product, stars, body" in msg
    assert "expected a map of user, item, rating, text" in msg
    with pytest.raises(DatasetError) as err:
        resolve("shop/reviews.csv", tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and "no column for user, item, rating, text" in msg and "reviews.csv.yaml" in msg
    with pytest.raises(DatasetError, match="not key=value with key one of"):
        resolve("shop/reviews.csv#colour=red", tmp_path)


def test_unknown_format_is_one_line(tmp_path):
    (tmp_path / "notes.txt").write_text("dear diary\ntoday I rated nothing\n")
    (tmp_path / "blob.bin").write_bytes(bytes(range(256)) * 4)
    for rel, shown in (("notes.txt", "'dear diary'"), ("blob.bin", "binary or empty content")):
        with pytest.raises(DatasetError) as err:
            resolve(rel, tmp_path)
        msg = str(err.value)
        assert "\n" not in msg and f"unknown review format (it starts with {shown})" in msg
        assert "Amazon 2014/2018 or Yelp Open JSON lines" in msg and "Parquet review table" in msg


def test_cli_run_refuses_an_unreadable_file_in_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("dear diary\n")
    assert main(["run", "mt", "--data-dir", str(tmp_path), "-p", "dataset=notes.txt"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and err.startswith("xrec: error: mt: notes.txt: unknown review format")


# ----------------------------------------------------------------------------- filters
def test_filters_while_reading_match_a_pandas_reference(tmp_path, reviews):
    write_reviews(tmp_path / "mine" / "a.json.gz", "amazon2014", df=reviews)
    since = "2013-06-01"
    filt = ReviewFilter(k_core=5, max_per_user=8, max_per_item=60, since=since)
    got = load_reviews("mine/a.json.gz", tmp_path, filters=filt)
    ref = reviews[reviews["time"] >= pd.Timestamp(since, tz="UTC").timestamp()].reset_index(drop=True)
    ref = ref[(ref.groupby("user").cumcount() < 8) & (ref.groupby("item").cumcount() < 60)]
    while True:
        keep = (ref.groupby("user")["user"].transform("size") >= 5) & (ref.groupby("item")["item"].transform("size") >= 5)
        if keep.all():
            break
        ref = ref[keep]
    assert 0 < len(got) < len(reviews)
    assert got["user"].tolist() == ref["user"].tolist() and got["time"].tolist() == ref["time"].tolist()
    # the same filters as dataset options, and max_reviews stops reading early
    assert len(load_reviews("mine/a.json.gz#k_core=5,max_per_item=60,max_per_user=8,since=2013-06-01", tmp_path)) == len(got)
    assert len(load_reviews("mine/a.json.gz#max_reviews=123", tmp_path)) == 123
    with pytest.raises(DatasetError, match="not an ISO date"):
        resolve("mine/a.json.gz#since=yesterday", tmp_path)


# ----------------------------------------------------------------------------- the Amazon layout
def test_amazon_file_in_the_layout_has_a_derived_name_and_is_listed_not_verified(user_data, reviews, capsys):
    assert resolve(DERIVED, user_data).files == (user_data / CATEGORY,)
    assert resolve(CATEGORY, user_data).name == DERIVED  # the path names the same dataset
    assert dataset_fields(DERIVED, user_data) == ("rating", "text", "time")
    assert len(load_reviews(DERIVED, user_data)) == len(reviews)
    assert main(["data", "status", "--verify", "--data-dir", str(user_data)]) == 0
    line = next(l for l in capsys.readouterr().out.splitlines() if DERIVED in l)
    sha = hashlib.sha256((user_data / CATEGORY).read_bytes()).hexdigest()
    assert "(your data)" in line and "True" in line and f"not verified (sha256 {sha})" in line


# ----------------------------------------------------------------------------- chapters
def test_chapters_accept_data_by_the_fields_it_holds(user_data, reviews):
    from xrec_core.experiments import gru, mt, mvae, nar, semax
    from xrec_core.papers import get_paper
    from xrec_core.runner import validate_parameters

    for cls in (mt.MTConfig, semax.SemaxConfig, mvae.MVAEConfig, nar.NARConfig):
        assert cls.from_scale("smoke", dataset=DERIVED, data_dir=str(user_data)).dataset == DERIVED
    with pytest.raises(ConfigError, match=r"GRUConfig needs item_text \(item text\), tags \(item tags\), which dataset "
                                          f"'{DERIVED}' lacks"):
        gru.GRUConfig.from_scale("smoke", dataset=DERIVED, data_dir=str(user_data))
    write_reviews(user_data / "mine" / "r.ss", "tang-ss", df=reviews)
    with pytest.raises(ConfigError, match=r"SemaxConfig needs time \(review times\)"):
        semax.SemaxConfig.from_scale("smoke", dataset="mine/r.ss", data_dir=str(user_data))
    assert mt.MTConfig.from_scale("smoke", dataset="mine/r.ss", data_dir=str(user_data)).paper_dataset == ""
    # the runner stores the canonical name: an absolute path becomes the derived name
    params = validate_parameters(get_paper("nar"), "smoke", {"dataset": str(user_data / CATEGORY)}, user_data)
    assert params["dataset"] == DERIVED
    with pytest.raises(ConfigError, match="mt: Unknown dataset 'nope'"):
        validate_parameters(get_paper("mt"), "smoke", {"dataset": "nope"}, user_data)


def test_each_review_chapter_loads_an_unseen_category_at_smoke_scale(user_data, reviews):
    """Data level for MT, SEMAX, MVAE, NAR (NAR and MVAE also run whole below) and GRU on a table with item text."""
    from xrec_core.experiments import gru, mt, mvae, nar, semax

    kw = {"dataset": DERIVED, "data_dir": str(user_data)}
    corpus = mt.load_corpus(mt.MTConfig.from_scale("smoke", **kw))
    assert len(corpus.df) == 600 and corpus.files == [user_data / CATEGORY]
    data = semax.load_data(semax.SemaxConfig.from_scale("smoke", **kw))
    assert len(data.test_idx) > 0 and len(data.reviews) == len(reviews)
    exp, files = mvae.load_explanations(mvae.MVAEConfig.from_scale("smoke", **kw))
    assert len(exp) > 100 and len(exp.features) > 5 and files == [user_data / CATEGORY]
    nd = nar.prepare(nar.NARConfig.from_scale("smoke", **kw), 0)
    assert nd.n_users > 50 and len(nd.feature_names) >= 10 and len(nd.test_users) > 0
    write_reviews(user_data / "shop" / "items.csv", "csv", df=reviews)
    cfg = gru.GRUConfig.from_scale("smoke", dataset=f"shop/items.csv#{TABLE_MAP}", data_dir=str(user_data))
    gd = gru.load_data(cfg)
    assert gd.n_items > 20 and gd.tags.shape[1] > 5 and gd.texts[0].startswith("a ")


def test_record_holds_the_path_relative_to_the_data_folder_size_and_checksum(user_data, tmp_path, data_dir):
    from xrec_core.experiments import nar
    from xrec_core.records import RunRecorder

    cfg = nar.NARConfig.from_scale("smoke", dataset=DERIVED, data_dir=str(user_data))
    rec = RunRecorder("nar", config=cfg, scale="smoke", dataset=cfg.dataset, seed=cfg.seed, results_dir=tmp_path / "res")
    rec.add_data_files(dataset_files(DERIVED, user_data))
    saved = json.loads(rec.finish().read_text())
    path = user_data / CATEGORY
    assert saved["data_files"] == {CATEGORY: {"sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                                              "bytes": path.stat().st_size, "verified": False}}
    assert saved["dataset"] == DERIVED and str(user_data) not in json.dumps(saved["data_files"])
    rec.add_data_files(dataset_files("amazon2014-instruments", data_dir))  # a registry file matches its checksum
    assert rec.data_files["amazon2014/reviews_Musical_Instruments_5.json.gz"]["verified"] is True


def test_scorecard_lists_runs_on_your_data_without_paper_comparison():
    from xrec_core.report import VERDICT_YOUR_DATA, scorecard, scorecard_markdown, verdict_summary

    def record(dataset: str) -> dict:
        return {"paper": "mt", "scale": "full", "dataset": dataset, "seed": 1, "_path": f"mt__{dataset}.json",
                "metrics": [{"table": "Table 2", "dataset": dataset, "model": "MT", "metric": "MSE", "value": 0.9,
                             "std": 0.1, "n": 10, "compare_to": "amazon2014-electronics"}]}

    card = scorecard([record(DERIVED), record("amazon2014-instruments")])
    mine = card[card["dataset"] == DERIVED]
    assert mine["verdict"].tolist() == [VERDICT_YOUR_DATA] and mine["paper_value"].isna().all()
    assert (card[card["dataset"] == "amazon2014-instruments"]["paper_dataset"] == "amazon2014-electronics").all()
    assert VERDICT_YOUR_DATA not in verdict_summary(card).columns
    md = scorecard_markdown(card)
    assert "## Your data" in md and md.index(DERIVED) > md.index("## Your data")


@pytest.mark.slow
@pytest.mark.parametrize("paper", ["nar", "mvae"])
def test_chapter_notebook_runs_on_an_unseen_amazon_category(user_data, tmp_path, paper):
    from xrec_core.runner import run_paper

    result = run_paper(paper, "smoke", {"dataset": DERIVED, "n_threads": 1}, output_dir=tmp_path / "nb",
                       results_dir=tmp_path / "res", data_dir=user_data, progress=False)
    (record,) = result.load_records()
    assert record["dataset"] == DERIVED and record["config"]["dataset"] == DERIVED and record["metrics"]
    sha = hashlib.sha256((user_data / CATEGORY).read_bytes()).hexdigest()
    assert record["data_files"] == {CATEGORY: {"sha256": sha, "bytes": (user_data / CATEGORY).stat().st_size,
                                               "verified": False}}
    assert all(np.isfinite(m["value"]) for m in record["metrics"])


# ----------------------------------------------------------------------------- benchmark
def test_data_benchmark_runs_at_tiny_size(tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_data.py"), "--n-reviews", "3000",
                          "--work-dir", str(tmp_path / "work"), "--results-dir", str(tmp_path / "res")],
                         capture_output=True, text=True, check=True, timeout=600)
    record = json.loads(Path(out.stdout.strip().splitlines()[-1]).read_text())
    rows = {r["case"]: r for r in record["tables"]["load"]}
    assert set(rows) == {"stream", "stream + filters", "json + pandas"}
    assert rows["stream"]["rows"] == rows["json + pandas"]["rows"] == 3000 and 0 < rows["stream + filters"]["rows"] < 3000
    assert list(record["data_files"]) == ["amazon2018/Synthetic_Benchmark_5.json.gz"]
    bench = record["benchmark"]  # the fields of every benchmark record (benchmarks/_record.py)
    assert [t["label"] for t in bench["timed"]] == list(rows)
    assert all(t["cpu_s"] > 0 and t["contended"] == (t["wall_over_cpu"] > 1.2) for t in bench["timed"])
    assert bench["requested_threads"] == 1 and len(bench["load_average"]["start"]) in (0, 3)
