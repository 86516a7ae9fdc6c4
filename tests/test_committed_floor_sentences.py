"""The MT, SEMAX and NAR chapters say where their committed records stand against the trivial floors
(global mean, MostPop) in sentences generated from the records: these functions read records written
here (synthetic values) and must carry the records' numbers and verdicts into the text."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from xrec_core.experiments.mt.report import committed_global_mean_floor as mt_floor
from xrec_core.experiments.nar.report import committed_mostpop_multiples
from xrec_core.experiments.semax.report import committed_global_mean_floor as semax_floor
from xrec_core.records import RECORD_SCHEMA_VERSION


def write_record(root: Path, paper: str, name: str, **fields) -> None:
    (root / paper).mkdir(parents=True, exist_ok=True)
    record = {"schema": RECORD_SCHEMA_VERSION, "paper": paper, "scale": "full", **fields}
    (root / paper / f"{name}.json").write_text(json.dumps(record))


def check(model: str, name: str, value: float, floor: float, passed: bool) -> dict:
    return {"model": model, "dataset": "d", "check": name, "value": value, "floor": floor, "passed": passed, "detail": ""}


def mse_row(model: str, values: list[float]) -> dict:
    return {"table": "Table 2", "model": model, "metric": "MSE", "value": float(np.mean(values)), "values": values}


# --------------------------------------------------------------------------- MT
def test_mt_sentence_takes_the_record_health_checks(tmp_path):
    assert mt_floor(tmp_path) == "No full-scale record of this chapter is committed yet."
    write_record(tmp_path, "mt", "a", dataset="giftcards", health=[
        check("MT", "MSE below global mean", 0.25, 0.3, True),
        check("PMF", "MSE below global mean", 0.36, 0.3, False),
        check("PMF", "training loss went down", 1.0, 1.0, True)])
    text = mt_floor(tmp_path)
    assert text.startswith("**giftcards** (`full` scale; from its health checks)")
    assert text.endswith("test MSE not below the global mean's 0.3000: PMF 0.3600; below it: MT.")


def test_mt_record_without_health_checks_is_judged_from_its_mse_rows_on_shared_folds(tmp_path):
    # PMF ran on folds 0 and 2 only: it is held to the global mean of those two folds, HFT to that of all three
    gm, pmf, hft, mt_ = [0.8, 0.7, 0.9], [0.85, 0.95], [0.9, 0.9, 0.9], [0.7, 0.6, 0.8]
    coverage = {"Global mean": [0, 1, 2], "PMF": [0, 2], "HFT": [0, 1, 2], "MT": [0, 1, 2]}
    write_record(tmp_path, "mt", "old", dataset="instruments",
                 metrics=[mse_row("Global mean", gm), mse_row("PMF", pmf), mse_row("HFT", hft), mse_row("MT", mt_)],
                 tables={"fold coverage": [{"metric": "MSE", "model": m, "folds": f} for m, f in coverage.items()]})
    pmf_floor, all_folds_floor = np.mean([gm[0], gm[2]]), np.mean(gm)  # 0.85 and 0.8: they differ, so each is named
    assert mt_floor(tmp_path) == (
        "**instruments** (`full` scale; from its MSE rows by the same rule: the record predates the health checks): "
        f"test MSE not below the global mean's: PMF {np.mean(pmf):.4f} against {pmf_floor:.4f}, "
        f"HFT {np.mean(hft):.4f} against {all_folds_floor:.4f}; below it: MT.")


def test_mt_sentence_when_every_model_passes(tmp_path):
    write_record(tmp_path, "mt", "a", dataset="d", health=[check("MT", "MSE below global mean", 0.2, 0.3, True)])
    assert mt_floor(tmp_path).endswith("the test MSE of every learned rating model (MT) is below the global mean's.")


# --------------------------------------------------------------------------- SEMAX
def test_semax_sentence_names_the_models_above_the_floor_and_the_rating_shift(tmp_path):
    write_record(tmp_path, "semax", "a", dataset="allbeauty",
                 tables={"data statistics": [{"part": "fit", "mean rating": 4.896}, {"part": "test", "mean rating": 4.259}]},
                 health=[check("NCF", "RMSE below global mean", 1.4688, 1.4681, False),
                         check("NCF", "MSE below global mean", 2.1574, 2.1554, False),
                         check("SEMA", "RMSE below global mean", 1.4325, 1.4681, True)])
    write_record(tmp_path, "semax", "b", dataset="old")
    first, second = semax_floor(tmp_path).split("\n\n")
    assert first == ("**allbeauty** (`full` scale; mean rating 4.90 on the reviews the models fit, 4.26 in the test "
                     "period): test RMSE not below the global mean's 1.4681: NCF 1.4688; below it: SEMA.")
    assert second == "**old** (`full` scale): the record predates the health checks."


# --------------------------------------------------------------------------- NAR
def test_nar_multiples_are_each_model_over_mostpop_largest_first_with_the_floor_verdicts(tmp_path):
    ndcg = {"MostPop": 0.25, "NAR": 0.2, "CAR": 0.3, "VBPR": 0.24}
    metrics = [{"table": "Table 4", "model": m, "metric": "NDCG", "value": v, "n": 3} for m, v in ndcg.items()]
    metrics.append({"table": "Table 3", "model": "NAR", "metric": "NDCG", "value": 0.9, "n": 3})  # explanations
    write_record(tmp_path, "nar", "a", dataset="instruments", config={"k": 10}, metrics=metrics,
                 health=[check("NAR", "NDCG@10 >= 0.9x MostPop", 0.2, 0.225, False),
                         check("CAR", "NDCG@10 >= 0.9x MostPop", 0.3, 0.225, True),
                         check("NAR", "training loss went down", 1.0, 1.0, True)])
    text = committed_mostpop_multiples(tmp_path)
    expected = ", ".join(f"{m} {ndcg[m] / ndcg['MostPop']:.2f}x" for m in ("CAR", "VBPR", "NAR"))  # 1.20, 0.96, 0.80
    assert text == (f"**instruments** (`full` scale, 3 seeds): NDCG@10 as a multiple of MostPop's 0.2500: {expected}; "
                    "below the 0.9x floor: NAR.")


def test_nar_record_without_mostpop_or_health_checks_says_so(tmp_path):
    write_record(tmp_path, "nar", "a", dataset="x", config={"k": 10},
                 metrics=[{"table": "Table 4", "model": "NAR", "metric": "NDCG", "value": 0.2, "n": 3}])
    assert committed_mostpop_multiples(tmp_path).endswith("): no MostPop row, so no multiples.")
    write_record(tmp_path, "nar", "a", dataset="x", config={"k": 5},
                 metrics=[{"table": "Table 4", "model": m, "metric": "NDCG", "value": 0.2, "n": 2} for m in ("NAR", "MostPop")])
    assert committed_mostpop_multiples(tmp_path).endswith("NDCG@5 as a multiple of MostPop's 0.2000: NAR 1.00x "
                                                          "(the record predates the health checks).")


def test_committed_sentences_on_the_book_records_carry_the_record_values():
    """On the records committed with the book: every number in the sentences is recomputed here from the JSON."""
    from xrec_core.experiments.nar import LEARNED_MODELS
    from xrec_core.report import committed_records

    multiples = committed_mostpop_multiples()
    for record in committed_records("nar"):
        ndcg = {m["model"]: m["value"] for m in record["metrics"] if m["metric"] == "NDCG" and m["table"] != "Table 3"}
        for model in set(LEARNED_MODELS) & set(ndcg):
            assert f"{model} {ndcg[model] / ndcg['MostPop']:.2f}x" in multiples
    floors = semax_floor()
    for record in committed_records("semax"):
        for c in record.get("health", []):
            if c["check"] == "RMSE below global mean" and not c["passed"]:
                assert f"{c['model']} {c['value']:.4f}" in floors
