"""Results for the book: committed full-run records per chapter and the reproduction scorecard."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from .papers import PAPERS
from .paths import REPO_ROOT
from .records import artifact_path, load_records
from .reference import compare, load_reference

COMMITTED_RESULTS = REPO_ROOT / "results"
RESULT_COLUMNS = ["table", "dataset", "paper_dataset", "model", "metric", "paper_value", "ours", "spread", "n", "interval",
                  "gap", "verdict", "health", "scale", "record"]
#: what a claim of a record without health checks counts as: judged before the book checked that its models learned
PREDATES_HEALTH = "record predates the training-health checks (rerun pending); as recorded then: "
#: scales in increasing order of fidelity; the scorecard shows the highest one per run.
SCALE_ORDER = ("smoke", "full", "paper")


def committed_records(paper_key: str, *, include_smoke: bool = False,
                      root: str | Path | None = None) -> list[dict[str, Any]]:
    """The run records committed under ``results/<paper_key>/`` (non-smoke unless asked)."""
    records = load_records(root or COMMITTED_RESULTS, paper_key)
    return [r for r in records if include_smoke or r.get("scale") != "smoke"]


def committed_results(paper_key: str, *, root: str | Path | None = None) -> pd.DataFrame:
    """Paper-vs-ours rows of the committed non-smoke records of one chapter (empty if none yet)."""
    records = committed_records(paper_key, root=root)
    if not records:
        return pd.DataFrame(columns=RESULT_COLUMNS)
    df = compare(records)
    cols = RESULT_COLUMNS
    return df[cols].sort_values(["table", "dataset", "metric", "model"]).reset_index(drop=True)


def committed_figures(paper_key: str, *, root: str | Path | None = None) -> None:
    """Show the figures of the committed non-smoke records of one chapter (in a notebook or the site).

    Each figure is displayed as an embedded PNG under a heading naming its record, so the
    published chapter carries the full-scale figures even when the notebook itself ran at smoke
    scale. A figure file that is missing is named, not skipped silently.
    """
    from IPython.display import Image, Markdown, display

    for rec in committed_records(paper_key, root=root):
        artifacts = {k: v for k, v in rec.get("artifacts", {}).items() if str(v).endswith(".png")}
        if not artifacts:
            continue
        display(Markdown(f"**{rec['dataset']}** ({rec['scale']} scale, `{Path(rec['_path']).name}`)"))
        for name, value in artifacts.items():
            path = artifact_path(value)
            if path.exists():
                display(Markdown(f"*{name}*"), Image(filename=str(path)))
            else:
                display(Markdown(f"*{name}*: figure file `{value}` is not in this checkout."))


def _best_scale(records: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Per (paper, dataset), keep the records of the highest scale present."""
    best: dict[tuple[str, str], int] = {}
    records = list(records)
    for r in records:
        key = (r["paper"], r["dataset"])
        rank = SCALE_ORDER.index(r["scale"]) if r["scale"] in SCALE_ORDER else -1
        best[key] = max(best.get(key, -1), rank)
    return [r for r in records
            if (SCALE_ORDER.index(r["scale"]) if r["scale"] in SCALE_ORDER else -1) == best[(r["paper"], r["dataset"])]]


def absent_datasets(data_dir: str | Path | None = None) -> set[str]:
    """Registry datasets whose files are not in the data folder (empty when no data folder is set)."""
    from .data.registry import status

    try:
        table = status(data_dir)
    except Exception:  # no data folder configured: nothing can be said about absence
        return set()
    return set(table.loc[~table["present"], "dataset"])


def scorecard(records: Iterable[Mapping[str, Any]] | None = None, *, root: str | Path | None = None,
              absent: set[str] | None = None) -> pd.DataFrame:
    """The reproduction scorecard: every reported number beside the paper's, with gap and verdict.

    Built from run records (default: every committed record under ``results/``) and
    ``paper_numbers.csv``; only the paper chapters' records count (benchmarks and the parity
    harness have their own pages). Rows the paper reports but no run produced appear with
    verdict ``not run`` so that gaps in coverage are visible, or ``not testable here`` when the
    paper's dataset is among ``absent`` (datasets whose files are not available to the build).
    """
    if records is None:
        records = load_records(root or COMMITTED_RESULTS)
    records = _best_scale(r for r in records if r.get("paper") in PAPERS)
    ref = load_reference()
    ours = compare(records, ref) if records else pd.DataFrame()
    covered = set()
    if not ours.empty:
        covered = set(zip(ours["paper"], ours["table"], ours["paper_dataset"], ours["model"], ours["metric"]))
    missing = [
        {"paper": r.paper, "table": r.table, "dataset": "", "paper_dataset": r.dataset, "model": r.model,
         "metric": r.metric, "ours": float("nan"), "spread": float("nan"), "n": 0, "interval": "", "paper_value": r.value,
         "gap": float("nan"), "rel_gap": float("nan"), "health": "",
         "verdict": "not run", "scale": "", "seed": None, "record": ""}
        for r in ref.itertuples(index=False)
        if (r.paper, r.table, r.dataset, r.model, r.metric) not in covered
    ]
    # A paper dataset we have no stand-in for is "not testable here" rather than "not run"
    # when the chapter ran the same table on other data.
    tables_run = set(zip(ours["paper"], ours["table"])) if not ours.empty else set()
    for row in missing:
        if (row["paper"], row["table"]) in tables_run or row["paper_dataset"] in (absent or set()):
            row["verdict"] = "not testable here"
    df = pd.concat([ours, pd.DataFrame(missing)], ignore_index=True) if missing else ours
    if df.empty:
        return df
    order = {k: i for i, k in enumerate(PAPERS)}
    df["_order"] = df["paper"].map(order)
    return df.sort_values(["_order", "table", "paper_dataset", "dataset", "metric", "model"]).drop(columns="_order").reset_index(drop=True)


def verdict_summary(card: pd.DataFrame) -> pd.DataFrame:
    """Counts of verdicts per paper (the one-glance view)."""
    if card.empty:
        return pd.DataFrame()
    return card.pivot_table(index="paper", columns="verdict", values="metric", aggfunc="count", fill_value=0)


def glance_markdown(card: pd.DataFrame, claims: pd.DataFrame) -> str:
    """The landing page's one-glance view: per paper, published numbers per verdict and claims that hold."""
    if card.empty:
        return "No run records yet.\n"
    verdicts = verdict_summary(card)
    table = verdicts.reindex([k for k in PAPERS if k in verdicts.index])
    if not claims.empty:
        from .claims import VERDICTS

        held = claims.pivot_table(index="paper", columns="verdict", values="claim", aggfunc="count", fill_value=0)
        held = held.reindex(columns=list(VERDICTS), fill_value=0)
        table = table.join(held.rename(columns=lambda c: f"claims: {c}"), how="left").fillna(0).astype(int)
    table.index.name = "paper"
    return _html_table(table.reset_index())


def _fmt(value: Any, digits: int = 4) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.{digits}g}"
    return html.escape(str(value))


def claim_verdict(record: Mapping[str, Any], claim: Mapping[str, Any]) -> tuple[str, str]:
    """A recorded claim's verdict and evidence as the book counts it.

    Claims of a record without training-health checks are *untestable*: they were judged before the
    book checked that the models behind them learned anything, so they are no finding either way
    (the evidence keeps what was recorded then). Older records carry ``holds`` instead of ``verdict``.
    """
    recorded = claim.get("verdict") or {True: "holds", False: "fails", None: "untestable"}[claim.get("holds")]
    if "health" not in record and record.get("scale") != "smoke":
        return "untestable", f"{PREDATES_HEALTH}{recorded}; {claim.get('evidence', '')}"
    return recorded, claim.get("evidence", "")


def claims_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The papers' qualitative claims as checked in each (highest-scale) run: verdict and evidence."""
    rows = []
    for r in _best_scale(r for r in records if r.get("paper") in PAPERS):
        for c in r.get("claims", []):
            verdict, evidence = claim_verdict(r, c)
            rows.append({"paper": r["paper"], "dataset": c.get("dataset") or r["dataset"], "scale": r["scale"],
                         "claim": c["claim"], "source": c["source"], "verdict": verdict, "evidence": evidence})
    return pd.DataFrame(rows, columns=["paper", "dataset", "scale", "claim", "source", "verdict", "evidence"])


def health_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Every training-health check of the (highest-scale) records: model, check, value, floor, pass."""
    rows = [{"paper": r["paper"], **c} for r in _best_scale(r for r in records if r.get("paper") in PAPERS)
            for c in r.get("health", [])]
    return pd.DataFrame(rows, columns=["paper", "model", "dataset", "check", "value", "floor", "passed", "detail"])


def scorecard_markdown(card: pd.DataFrame, claims: pd.DataFrame | None = None) -> str:
    """Render the scorecard as MyST markdown tables, one section per paper (numbers, then claims)."""
    if card.empty:
        return "No run records found under `results/` yet. Run `python -m xrec_core run all --scale smoke`.\n"
    parts = []
    summary = verdict_summary(card)
    parts.append("## At a glance\n\nNumber of published numbers per verdict (the highest scale run per dataset).\n")
    parts.append(summary.to_markdown() if hasattr(summary, "to_markdown") and _has_tabulate() else _html_table(summary.reset_index()))
    for key, paper in PAPERS.items():
        sub = card[card["paper"] == key]
        if sub.empty:
            continue
        parts.append(f"\n## {paper.title}\n\n*{paper.citation}.* Chapter: {{doc}}`/book/chapters/{key}`\n")
        cols = ["table", "paper_dataset", "dataset", "model", "metric", "paper_value", "ours", "spread", "n", "interval", "gap",
                "verdict", "health", "scale"]
        parts.append(_html_table(sub[cols]))
        if claims is not None and not claims.empty:
            sub_claims = claims[claims["paper"] == key]
            if not sub_claims.empty:
                parts.append("\n**The paper's claims, checked on our runs**\n")
                parts.append(_html_table(sub_claims.drop(columns="paper")))
    return "\n".join(parts) + "\n"


def _has_tabulate() -> bool:
    try:
        import tabulate  # noqa: F401
    except ImportError:
        return False
    return True


def _html_table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = "".join(
        "<tr>" + "".join(f"<td>{_fmt(v)}</td>" for v in row) + "</tr>" for row in df.itertuples(index=False)
    )
    return f'<table class="scorecard">\n<thead><tr>{head}</tr></thead>\n<tbody>{body}</tbody>\n</table>\n'
