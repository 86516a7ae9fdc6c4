"""Results for the book: committed full-run records per chapter and the reproduction scorecard."""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from .data.registry import is_registry_dataset
from .papers import PAPERS
from .paths import REPO_ROOT
from .records import artifact_path, load_records
from .reference import compare, load_reference

COMMITTED_RESULTS = REPO_ROOT / "results"
RESULT_COLUMNS = ["table", "dataset", "paper_dataset", "model", "metric", "paper_value", "ours", "spread", "n", "interval",
                  "gap", "verdict", "health", "scale", "record"]
#: what a claim of a record without health checks counts as: judged before the book checked that its models learned
PREDATES_HEALTH = "record predates the training-health checks (rerun pending); as recorded then: "
#: verdict of the rows of runs on a user's own data (not a registry dataset): listed, never compared with a paper
VERDICT_YOUR_DATA = "your data"
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
    Runs on data outside the registry (a user's files) are listed with verdict ``your data`` and
    never compared with a paper.
    """
    if records is None:
        records = load_records(root or COMMITTED_RESULTS)
    records = _best_scale(r for r in records if r.get("paper") in PAPERS)
    yours = your_data_rows([r for r in records if not is_registry_dataset(r["dataset"])])
    records = [r for r in records if is_registry_dataset(r["dataset"])]
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
    parts = [part for part in (ours, pd.DataFrame(missing), yours) if not part.empty]
    df = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()
    if df.empty:
        return df
    order = {k: i for i, k in enumerate(PAPERS)}
    df["_order"] = df["paper"].map(order)
    return df.sort_values(["_order", "table", "paper_dataset", "dataset", "metric", "model"]).drop(columns="_order").reset_index(drop=True)


def your_data_rows(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Scorecard rows of runs on a user's own data: our numbers only, verdict ``your data``, no paper comparison."""
    rows = [
        {"paper": r["paper"], "table": m["table"], "dataset": m["dataset"], "paper_dataset": "", "model": m["model"],
         "metric": m["metric"], "ours": m["value"], "spread": m.get("std"), "n": m.get("n", 1),
         "paper_value": float("nan"), "gap": float("nan"), "rel_gap": float("nan"), "verdict": VERDICT_YOUR_DATA,
         "scale": r["scale"], "seed": r["seed"], "record": Path(r.get("_path", "")).name}
        for r in records for m in r.get("metrics", [])
    ]
    return pd.DataFrame(rows)


def verdict_summary(card: pd.DataFrame) -> pd.DataFrame:
    """Counts of verdicts per paper (the one-glance view; runs on your data are not verdicts)."""
    if not card.empty:
        card = card[card["verdict"] != VERDICT_YOUR_DATA]
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


def global_mean_floor_verdict(checks: Sequence[Mapping[str, Any]], metric: str, learned: str = "learned model") -> str:
    """The end of a chapter's sentence on its global-mean floor checks (health rows as dicts): every model
    below the floor, or those that are not, with the floor named once when they share it (the same folds)."""
    failed = [c for c in checks if not c["passed"]]
    passed = [c["model"] for c in checks if c["passed"]]
    if not failed:
        return f"the test {metric} of every {learned} ({', '.join(passed)}) is below the global mean's."
    floors = {f"{c['floor']:.4f}" for c in failed}
    if len(floors) == 1:
        text = f"test {metric} not below the global mean's {floors.pop()}: " + ", ".join(
            f"{c['model']} {c['value']:.4f}" for c in failed)
    else:
        text = f"test {metric} not below the global mean's: " + ", ".join(
            f"{c['model']} {c['value']:.4f} against {c['floor']:.4f}" for c in failed)
    return text + (f"; below it: {', '.join(passed)}." if passed else ".")


def health_table(records: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Every training-health check of the (highest-scale) records: model, check, value, floor, pass."""
    rows = [{"paper": r["paper"], **c} for r in _best_scale(r for r in records if r.get("paper") in PAPERS)
            for c in r.get("health", [])]
    return pd.DataFrame(rows, columns=["paper", "model", "dataset", "check", "value", "floor", "passed", "detail"])


def scorecard_markdown(card: pd.DataFrame, claims: pd.DataFrame | None = None) -> str:
    """Render the scorecard as MyST markdown tables, one section per paper (numbers, then claims)."""
    if card.empty:
        return "No run records found under `results/` yet. Run `python -m xrec_core run all --scale smoke`.\n"
    yours, card = card[card["verdict"] == VERDICT_YOUR_DATA], card[card["verdict"] != VERDICT_YOUR_DATA]
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
    if not yours.empty:
        parts.append("\n## Your data\n\nRuns on data outside the registry (your own files): our numbers only, "
                     "with no paper comparison.\n")
        parts.append(_html_table(yours[["paper", "dataset", "table", "model", "metric", "ours", "spread", "n", "scale"]]))
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


# --------------------------------------------------------------------------- tuning: the same budget for every model
#: what a record's tuning summary counts as a trial it used (a running or waiting trial is not counted)
COUNTED_TRIAL_STATES = ("COMPLETE", "PRUNED", "FAIL")


def _recorded_trials(summary: Mapping[str, Any]) -> dict[str, int]:
    """A study's trial counts as the record states them: ``complete``, ``pruned``, ``failed``."""
    return {state: int(summary.get(f"trials_{state}", 0)) for state in ("complete", "pruned", "failed")}


def tuning_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """One row per tuned model of a record: its trial budget (complete, pruned, failed), best value and parameters.

    Every number is the record's own (:func:`xrec_core.tuning.tuning_summary` at the time of the run),
    so models tuned with unequal budgets show it here.
    """
    rows = []
    for model, summary in record.get("tuning", {}).items():
        counts = _recorded_trials(summary)
        params = ", ".join(f"{name}={_fmt(value, 3)}" for name, value in sorted(summary.get("best_params", {}).items()))
        rows.append({"model": model, "trials": sum(counts.values()), **counts,
                     "direction": summary.get("direction"), "best value": summary.get("best_value"),
                     "best trial": summary.get("best_trial"), "best parameters": params})
    return pd.DataFrame(rows, columns=["model", "trials", "complete", "pruned", "failed", "direction", "best value",
                                       "best trial", "best parameters"])


def study_trials(record: Mapping[str, Any], model: str) -> pd.DataFrame | None:
    """The trials of ``model``'s study that the record counted, read from the study file the record names.

    A study may have been continued after the record was written; only its first trials (by number) up
    to the record's count are returned, so the history shown is the one the record's parameters came
    from. Columns: ``number``, ``state``, ``value`` (a pruned trial's last reported value),
    ``best_so_far`` (over complete trials, in the study's direction) and ``duration_s`` (the trial's
    wall-clock seconds as Optuna stored them; NaN for a trial cut off with its process, which a later
    run marked failed, so that its span is not its compute). ``None`` when the study file is not in
    this checkout, or when its trials no longer end on the best value the record states (the study was
    recreated after the record, e.g. on changed data, and the record awaits its rerun).
    """
    import optuna

    summary = record["tuning"][model]
    path = Path(summary["storage"])
    path = path if path.is_absolute() else REPO_ROOT / path  # records store it relative to the repository
    if not path.exists():
        return None
    study = optuna.load_study(study_name=summary.get("study", model), storage=f"sqlite:///{path}")
    counted = sum(_recorded_trials(summary).values())
    trials = sorted((t for t in study.get_trials(deepcopy=False) if t.state.name in COUNTED_TRIAL_STATES),
                    key=lambda t: t.number)[:counted]
    rows = []
    for t in trials:
        value = t.value
        if value is None and t.intermediate_values:
            value = t.intermediate_values[max(t.intermediate_values)]
        cut_off = t.state.name == "FAIL" and "error" not in t.user_attrs
        duration = (t.datetime_complete - t.datetime_start).total_seconds() \
            if t.datetime_complete and t.datetime_start and not cut_off else math.nan
        rows.append({"number": t.number, "state": t.state.name.lower(), "value": value, "duration_s": duration})
    table = pd.DataFrame(rows, columns=["number", "state", "value", "duration_s"])
    complete = table["value"].where(table["state"] == "complete")
    best = complete.cummin() if summary.get("direction", "minimize") == "minimize" else complete.cummax()
    table["best_so_far"] = best.ffill()
    recorded = summary.get("best_value")
    if recorded is not None and not (table["best_so_far"].notna().any()
                                     and math.isclose(float(table["best_so_far"].iloc[-1]), float(recorded),
                                                      rel_tol=1e-9, abs_tol=1e-12)):
        return None  # the file holds another study now (recreated on other data): not this record's trials
    return table


def tuning_history_figure(record: Mapping[str, Any]):
    """Small multiples, one panel per tuned model: each counted trial's value (dots: complete; crosses:
    pruned, at their last reported value) and the best value so far (line). ``None`` without tuning."""
    import matplotlib.pyplot as plt

    models = list(record.get("tuning", {}))
    if not models:
        return None
    cols = min(4, len(models))
    rows = math.ceil(len(models) / cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 2.4 * rows), squeeze=False)
    for ax, model in zip(axes.flat, models):
        trials = study_trials(record, model)
        summary = record["tuning"][model]
        counts = _recorded_trials(summary)
        ax.set_title(f"{model} ({counts['complete']} complete, {counts['pruned']} pruned)", fontsize=8)
        if trials is None:
            ax.text(0.5, 0.5, "this record's trials are not in this checkout", ha="center", va="center", fontsize=7,
                    transform=ax.transAxes)
            continue
        for state, marker in (("complete", "o"), ("pruned", "x")):
            sub = trials[trials["state"] == state]
            ax.scatter(sub.index, sub["value"], marker=marker, s=18, color="tab:blue", label=state)
        ax.step(trials.index, trials["best_so_far"], where="post", color="tab:red", lw=1.2, label="best so far")
        ax.set_xlabel("trial", fontsize=7)
        ax.set_ylabel(f"validation ({'lower' if summary.get('direction') == 'minimize' else 'higher'} is better)",
                      fontsize=7)
        ax.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(models):]:
        ax.set_visible(False)
    if axes.flat[0].get_legend_handles_labels()[0]:
        axes.flat[0].legend(fontsize=6)
    fig.suptitle(f"Tuning trials, {record['paper']} on {record['dataset']} ({record['scale']})", fontsize=9)
    fig.tight_layout()
    return fig


def committed_tuning(paper_key: str, *, root: str | Path | None = None,
                     figure_dir: str | Path | None = None) -> list[Path]:
    """Show, for each committed non-smoke record of a chapter, its tuning budgets and trial histories.

    Each history figure is also saved as a PNG under ``figure_dir`` (default ``outputs/figures/<paper>``);
    returns the saved paths. Records without tuning are named, so a chapter whose models ran untuned says so.
    """
    from IPython.display import Markdown, display

    from .plots import save_figure, show_figure

    figure_dir = Path(figure_dir) if figure_dir else REPO_ROOT / "outputs" / "figures" / paper_key
    saved = []
    for rec in committed_records(paper_key, root=root):
        name = Path(rec["_path"]).stem  # committed_records names each record's file
        if not rec.get("tuning"):
            display(Markdown(f"**{rec['dataset']}** ({rec['scale']} scale): no tuning study behind this record; "
                             "its models ran with the config's values."))
            continue
        display(Markdown(f"**{rec['dataset']}** ({rec['scale']} scale): trials per model and the best parameters "
                         "every table row of this record used"))
        display(tuning_table(rec))
        fig = tuning_history_figure(rec)
        saved.append(save_figure(fig, figure_dir / f"{name}__tuning.png"))
        show_figure(fig)
    return saved
