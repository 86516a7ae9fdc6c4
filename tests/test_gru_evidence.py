"""The GRU chapter's prose about its preset and about CTR is generated from committed records: these
functions read records written here (synthetic values) and must carry their numbers into the text."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from xrec_core.experiments.gru import make_config
from xrec_core.experiments.gru.report import (CONVERGENCE_BENCHMARK, committed_ctr_parity, committed_scale_evidence,
                                              scale_evidence_markdown)
from xrec_core.records import RECORD_SCHEMA_VERSION


def write_record(root: Path, folder: str, name: str, **fields) -> None:
    (root / folder).mkdir(parents=True, exist_ok=True)
    (root / folder / f"{name}.json").write_text(json.dumps({"schema": RECORD_SCHEMA_VERSION, **fields}))


def convergence_record(root: Path, dataset: str = "citeulike-t") -> None:
    preset = {"k": 200, "k_gru": 64, "lr": 0.001}
    rows = [
        {"model": "Embed", "batch_users": 128, "stopped_by": "CPU budget", "best_valid_recall50": 0.2, "best_updates": 900,
         "cpu_s": 1200.4, "vs_most_pop": 3.333},
        {"model": "Embed", "k": 64, "lr": 0.003, "batch_users": 128, "stopped_by": "early stopping",
         "best_valid_recall50": 0.12, "best_updates": 500, "cpu_s": 150.6, "vs_most_pop": 2.0},
        {"model": "GRU", "batch_users": 512, "stopped_by": "CPU budget", "best_valid_recall50": 0.18, "best_updates": 70,
         "cpu_s": 1199.0, "vs_most_pop": 3.0},
    ]
    write_record(root, CONVERGENCE_BENCHMARK, f"conv-{dataset}", dataset=dataset, config={"cpu_budget": 1200.0},
                 tables={"preset": [preset], "convergence": rows})


def test_scale_evidence_rows_take_each_configuration_from_its_record_or_the_preset(tmp_path):
    convergence_record(tmp_path)
    df = committed_scale_evidence(tmp_path)
    assert df[["model", "K", "lr", "CPU s", "stopped by"]].values.tolist() == [
        ["Embed", 200, 0.001, 1200, "CPU budget"],  # K and lr from the record's preset
        ["Embed", 64, 0.003, 151, "early stopping"],  # the row's own K and lr
        ["GRU", 64, 0.001, 1199, "CPU budget"],  # the GRU's size is the preset's k_gru
    ]
    assert df["x MostPop"].tolist() == [3.33, 2.0, 3.0]
    convergence_record(tmp_path, "mter-cellphones")  # a second dataset's rows are named by their dataset
    assert committed_scale_evidence(tmp_path)["dataset"].tolist() == ["citeulike-t"] * 3 + ["mter-cellphones"] * 3


def test_scale_evidence_sentences_name_budget_stops_and_early_stops_at_the_preset_size(tmp_path):
    convergence_record(tmp_path)
    text = scale_evidence_markdown(committed_scale_evidence(tmp_path), make_config("full", dataset="citeulike-t"))
    embed, gru = text.split("\n\n")
    assert "citeulike-t, K = 200, 128 users per batch, lr 0.001: best at update 900, 1200 CPU s, 3.33x MostPop" in embed
    assert "early stopping at the preset's K = 64: citeulike-t, 128 users per batch, lr 0.003: best at update 500, 151 CPU s, 2.00x" in embed
    assert gru.endswith("no run at the preset's K = 64 ended by early stopping within its budget.")
    assert "No convergence benchmark" in scale_evidence_markdown(pd.DataFrame(), make_config("full", dataset="citeulike-t"))


def test_ctr_parity_sentence_puts_the_harness_beside_the_chapter_record(tmp_path):
    assert committed_ctr_parity(tmp_path).startswith("No committed parity record")
    write_record(tmp_path, "parity", "p", metrics=[
        {"dataset": "citeulike-t", "metric": "Recall@50", "model": "CTR (ours)", "value": 0.3104},
        {"dataset": "citeulike-t", "metric": "Recall@100", "model": "CTR (ours)", "value": 0.9},
        {"dataset": "other", "metric": "Recall@50", "model": "CTR (ours)", "value": 0.9}])
    write_record(tmp_path, "gru", "g", dataset="citeulike-t", scale="full",
                 tuning={"CTR": {"best_params": {"lambda_v": 3.3517}}},
                 metrics=[{"model": "CTR", "metric": "Recall@50 warm (%)", "value": 36.04, "n": 3}])
    text = committed_ctr_parity(tmp_path)
    assert "CTR (ours) 31.0%" in text and "90.0%" not in text  # Recall@100 and other datasets left out
    assert text.endswith("this chapter's CTR with the tuned lambda_v = 3.35 reaches 36.0% warm-start Recall@50 over 3 folds.")


def test_record_tuning_notes_the_sizes_the_studies_chose(monkeypatch):
    import xrec_core.tuning
    from xrec_core.experiments.gru.tuning import record_tuning

    class Recorder:
        def __init__(self):
            self.notes, self.tuning, self.untuned = [], {}, []

        def add_tuning(self, name, summary):
            self.tuning[name] = summary

        def note(self, text):
            self.notes.append(text)

        def add_untuned(self, models):
            self.untuned = list(models)

    monkeypatch.setattr(xrec_core.tuning, "tuning_summary", lambda *a, **k: {"best_params": {}})
    rec = Recorder()
    tuned = {"Embed": {"k": 84, "lr": 1e-3}, "CTR": {"lambda_v": 3.0}, "BPR": {"k": 73}, "GRU": {"k": 40}}
    record_tuning(rec, make_config("full", dataset="citeulike-t"), tuned, ["Embed", "CTR", "BPR", "GRU", "MostPop", "Embed-MTL"])
    assert rec.notes == ["Sizes chosen by the tuning studies (they replace the preset's): Embed K = 84, GRU K = 40."]
    assert set(rec.tuning) == set(tuned) and rec.untuned == ["Embed-MTL"]
