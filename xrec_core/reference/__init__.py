"""The papers' published numbers, used only to compare with ours.

``paper_numbers.csv`` holds one row per published number: ``paper`` (``mt``, ``semax``,
``gru``, ``mvae``, ``nar``), ``table`` (``"Table 2"``, ``"Sec. 4.3"`` ...), ``dataset`` (the
paper's dataset name), ``model``, ``metric``, ``value`` (empty when the paper's table is
missing from the text we have) and ``note``. Nothing in the book reads a result from here.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

REFERENCE_FILE = Path(__file__).with_name("paper_numbers.csv")

#: metrics where smaller is better; everything else is taken as higher-is-better.
LOWER_IS_BETTER = {"mse", "rmse", "mae", "perplexity", "loss", "error"}

VERDICT_REPRODUCED = "reproduced"
VERDICT_PARTLY = "partly"
VERDICT_NOT = "not reproduced"
VERDICT_NOT_TESTABLE = "not testable here"
VERDICT_NO_PAPER = "no paper number"
VERDICT_SMOKE = "smoke scale (not a reproduction)"


def load_reference(path: str | Path = REFERENCE_FILE) -> pd.DataFrame:
    """Read the paper-numbers file with its columns typed (``value`` float, NaN when unavailable)."""
    df = pd.read_csv(path, dtype={"paper": str, "table": str, "dataset": str, "model": str, "metric": str, "note": str},
                     keep_default_na=False, na_values={"value": [""]})
    df["value"] = pd.to_numeric(df["value"], errors="raise")
    dup = df.duplicated(["paper", "table", "dataset", "model", "metric"], keep=False)
    if dup.any():
        raise ValueError(f"Duplicate rows in {path}:\n{df[dup]}")
    return df


def higher_is_better(metric: str) -> bool:
    base = metric.lower().split("@")[0].split("(")[0].strip()
    return base not in LOWER_IS_BETTER


def verdict(values: Iterable[float], paper: float, *, same_data: bool, scale: str, metric: str) -> str:
    """Classify one comparison of our per-unit values (folds, splits, seeds) with a published number.

    The rule (:func:`xrec_core.claims.published_number_verdict`): *reproduced* when the paper's
    value lies inside the 95% t-interval of our mean over units, *partly* when it lies inside the
    99.9% interval only, *not reproduced* otherwise (and with a single unit, unless equal to the
    paper's printed precision). Only runs on the paper's own data at a non-smoke scale get one.
    """
    from ..claims import published_number_verdict

    if scale == "smoke":
        return VERDICT_SMOKE
    if paper is None or (isinstance(paper, float) and math.isnan(paper)):
        return VERDICT_NO_PAPER
    if not same_data:
        return VERDICT_NOT_TESTABLE
    return published_number_verdict(list(values), float(paper))[0]


def interval_text(values: Iterable[float]) -> str:
    """Our 95% t-interval over units, as shown beside each published number ("" with one unit)."""
    from ..claims import t_interval

    iv = t_interval(list(values))
    return "" if iv is None else str(iv)


def compare(records: Iterable[Mapping[str, Any]], reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """Join run-record metric rows with the paper's numbers: ours, spread, paper, gap, verdict.

    One output row per metric row of every record, with the record's scale and data files.
    """
    from ..health import summarize

    ref = load_reference() if reference is None else reference
    index = {(r.paper, r.table, r.dataset, r.model, r.metric): r for r in ref.itertuples(index=False)}
    rows = []
    for rec in records:
        # "not checked": the record predates the health checks; "": the model is itself a floor (no check)
        health = summarize(rec["health"]) if "health" in rec else None
        for m in rec.get("metrics", []):
            target = m.get("compare_to")
            ref_row = index.get((rec["paper"], m["table"], target, m["model"], m["metric"])) if target else None
            paper_value = float(ref_row.value) if ref_row is not None else float("nan")
            same_data = target == m["dataset"]
            gap = m["value"] - paper_value if ref_row is not None else float("nan")
            values = m.get("values") or [m["value"]]
            rows.append({
                "paper": rec["paper"], "table": m["table"], "dataset": m["dataset"], "paper_dataset": target or "",
                "model": m["model"], "metric": m["metric"], "ours": m["value"], "spread": m.get("std"), "n": m.get("n", 1),
                "interval": interval_text(values), "paper_value": paper_value, "gap": gap,
                "rel_gap": gap / abs(paper_value) if paper_value not in (0.0,) and not math.isnan(paper_value) else float("nan"),
                "verdict": verdict(values, paper_value, same_data=same_data, scale=rec["scale"], metric=m["metric"])
                if ref_row is not None else (VERDICT_SMOKE if rec["scale"] == "smoke" else VERDICT_NO_PAPER),
                "health": "not checked" if health is None else health.get(m["model"], ""),
                "scale": rec["scale"], "seed": rec["seed"], "record": Path(rec.get("_path", "")).name,
            })
    return pd.DataFrame(rows)


def paper_vs_ours(record: Mapping[str, Any], table: str | None = None, reference: pd.DataFrame | None = None) -> pd.DataFrame:
    """The chapter view of one record: a tidy table of paper value, ours ± spread and the gap."""
    df = compare([record], reference)
    if table is not None:
        df = df[df["table"] == table]
    cols = ["table", "dataset", "paper_dataset", "model", "metric", "paper_value", "ours", "spread", "n", "interval", "gap",
            "verdict", "health"]
    return df[cols].reset_index(drop=True)
