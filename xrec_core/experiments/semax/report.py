"""The SEMAX chapter's results: Table 3, Figures 4-6, health checks, learning curves and claims, into one record.

:func:`record_results` is the one function that writes a run into its :class:`RunRecorder`: metric
rows first, then the health checks (every learned rating model against the global mean of the
same split, and its training loss), then the claims through :class:`ClaimJudge` (paired t-tests
over the seeds; a claim naming a model that failed a health check or crashed is *untestable*),
then the figures.
"""

from __future__ import annotations

import dataclasses
import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...health import HealthCheck, global_mean_check, global_mean_mse, loss_decreased, rating_below_global_mean
from ...metrics.rating import mae, rmse
from ...plots import learning_curves_figure, save_figure
from ...records import Claim, MetricRow, RunRecorder
from ..common import ClaimJudge, figures_dir
from .config import METRICS, PAPER_KEY, PAPER_MODELS, SIMPLE_BASELINES, SemaxConfig
from .data import SemaxData
from .protocol import TUNED_BASELINES, TUNED_NAMES, SemaxRun, UnitResult, build_model, tuned_params

#: a bin of Figures 4-5 enters the trend claim only when it holds at least this many test ratings
MIN_BIN_SIZE = 20
#: the name :func:`health_checks` gives the floor of a model's test RMSE (the global mean's on the same split)
GLOBAL_MEAN_CHECK = global_mean_check("RMSE")


# --------------------------------------------------------------------------- tables and curves
def table3(results: Mapping[str, Sequence[UnitResult]]) -> pd.DataFrame:
    """MAE and RMSE per model: mean, standard deviation over seeds, number of seeds."""
    rows = []
    for name, runs in results.items():
        row: dict[str, Any] = {"model": name, "n": len(runs)}
        for m in METRICS:
            vals = np.array([r[m] for r in runs])
            row[m] = vals.mean()
            row[f"{m} sd"] = vals.std(ddof=1) if len(vals) > 1 else np.nan
        rows.append(row)
    return pd.DataFrame(rows)


def bin_labels(edges: Sequence[int]) -> list[str]:
    labels = []
    for lo, hi in zip(edges, list(edges[1:]) + [None]):
        labels.append(f">={lo}" if hi is None else (str(lo) if hi - lo == 1 else f"{lo}-{hi - 1}"))
    return labels


def binned_errors(y: np.ndarray, pred: np.ndarray, counts: np.ndarray, edges: Sequence[int]) -> dict[str, list]:
    """MAE and RMSE of the test ratings grouped by ``counts`` (bins with left edges ``edges``)."""
    which = np.searchsorted(np.asarray(edges), counts, side="right") - 1  # bin of every test rating
    out: dict[str, list] = {"bin": bin_labels(edges), "n": [], "MAE": [], "RMSE": []}
    for b in range(len(edges)):
        sel = which == b
        out["n"].append(int(sel.sum()))
        out["MAE"].append(mae(y[sel], pred[sel]) if sel.any() else float("nan"))
        out["RMSE"].append(rmse(y[sel], pred[sel]) if sel.any() else float("nan"))
    return out


def figure45_curves(cfg: SemaxConfig, data: SemaxData, results: Mapping[str, Sequence[UnitResult]]) -> dict[str, dict[str, Any]]:
    """Figures 4 (users) and 5 (items): per model, error per bin of training ratings (seed mean and per seed)."""
    import warnings

    y = data.corpus.ratings[data.test_idx].astype(np.float64)
    n_u, n_i = data.train_counts()
    curves = {}
    for fig, entity, counts in (("Figure 4", "user", n_u), ("Figure 5", "item", n_i)):
        for name, runs in results.items():
            per_seed = [binned_errors(y, np.asarray(r["pred"]), counts, cfg.count_bins) for r in runs]
            with warnings.catch_warnings():  # an empty bin stays NaN
                warnings.simplefilter("ignore", RuntimeWarning)
                mean = {m: np.nanmean([p[m] for p in per_seed], axis=0).tolist() for m in METRICS}
            curves[f"{fig}/{name}"] = {
                "figure": fig, "entity": entity, "model": name, "x": per_seed[0]["bin"], "n": per_seed[0]["n"],
                **mean,
                "RMSE per seed": [p["RMSE"] for p in per_seed],
                "xlabel": f"training ratings of the {entity}",
            }
    return curves


def figure6_curve(sweep: Mapping[float, Sequence[UnitResult]]) -> dict[str, Any]:
    betas = sorted(sweep)
    out: dict[str, Any] = {"x": betas, "n": [len(sweep[b]) for b in betas], "xlabel": "beta (Eq. 20)"}
    for m in METRICS:
        out[m] = [float(np.mean([r[m] for r in sweep[b]])) for b in betas]
        out[f"{m} sd"] = [float(np.std([r[m] for r in sweep[b]], ddof=1)) if len(sweep[b]) > 1 else None for b in betas]
        out[f"{m} per seed"] = [[float(r[m]) for r in sweep[b]] for b in betas]
    return out


def _rel(a: float, b: float) -> float:
    """Relative reduction of error ``b`` -> ``a`` (positive when ``a`` is lower)."""
    return (b - a) / b


# --------------------------------------------------------------------------- health and claims
def health_checks(cfg: SemaxConfig, data: SemaxData, results: Mapping[str, Sequence[UnitResult]]) -> list[HealthCheck]:
    """Every learned rating model against the global mean of the same split (MSE and RMSE), and its training loss.

    The floor is computed here from the data (training-mean prediction on the test period), so
    it exists even when the simple baselines are switched off.
    """
    floor = global_mean_mse(data.fit.ratings, data.test.ratings)  # float64, as the "Global mean" row
    checks: list[HealthCheck] = []
    for name, runs in results.items():
        if name == "Global mean":
            continue
        mse = float(np.mean([r["MSE"] for r in runs]))
        checks.append(rating_below_global_mean(name, cfg.dataset, mse, floor, metric="MSE"))
        checks.append(rating_below_global_mean(name, cfg.dataset, float(np.mean([r["RMSE"] for r in runs])),
                                               float(np.sqrt(floor)), metric="RMSE"))
        for seed, r in zip(cfg.seeds(), runs):
            if "curve" in r:
                check = loss_decreased(name, cfg.dataset, r["curve"]["train_loss"])
                checks.append(dataclasses.replace(check, detail=f"seed {seed}: {check.detail}"))
    return checks


def _values(results: Mapping[str, Sequence[UnitResult]], metric: str, models: Sequence[str]) -> dict[str, list[float] | None]:
    """Per-seed values of ``metric`` for ``models`` (``None`` for a model that did not run or crashed)."""
    return {m: [float(r[metric]) for r in results[m]] if m in results else None for m in models}


def decide_claims(judge: ClaimJudge, cfg: SemaxConfig, results: Mapping[str, Sequence[UnitResult]],
                  curves: Mapping[str, Mapping[str, Any]], sweep: Mapping[float, Sequence[UnitResult]] | None) -> None:
    """The paper's claims (Sec. IV-B), each a paired t-test over the seeds through ``judge``."""
    ds = cfg.dataset
    everyone = list(PAPER_MODELS) + list(SIMPLE_BASELINES)
    for m in METRICS:
        v = _values(results, m, everyone)
        others = [x for x in PAPER_MODELS if x != "SEMAX"]
        judge.better(f"SEMAX has the lowest {m} of the six models", "Sec. IV-B1 (1), Table 3", v, "SEMAX", others,
                     higher_is_better=False, dataset=ds)
        # "NCF is the worst": its error is higher than every other model's (the judge's winner is the highest error)
        judge.better(f"NCF has the highest {m} of the six models", "Sec. IV-B1 (4)", v, "NCF",
                     [x for x in PAPER_MODELS if x != "NCF"], higher_is_better=True, dataset=ds)
        judge.better(f"SEMAX has a lower {m} than TransNets-Ext (the paper: about 10% lower)", "Sec. IV-B1 (2)", v,
                     "SEMAX", "TransNets-Ext", higher_is_better=False, dataset=ds)
        judge.better(f"TransNets-Ext has the lowest {m} after SEMAX", "Sec. IV-B1 (2)", v, "TransNets-Ext",
                     [x for x in PAPER_MODELS if x not in ("SEMAX", "TransNets-Ext")], higher_is_better=False, dataset=ds)
        judge.better(f"SEMAX has a lower {m} than SEMA (multi-task learning helps)", "Sec. IV-B1 (1)", v, "SEMAX", "SEMA",
                     higher_is_better=False, dataset=ds)
        for tn in ("TransNets", "TransNets-Ext"):
            judge.better(f"{tn} has a lower {m} than DeepCoNN (the paper: 2% to 7% lower)", "Sec. IV-B1 (3)", v, tn,
                         "DeepCoNN", higher_is_better=False, dataset=ds)
        judge.better(f"TransNets-Ext has a lower {m} than TransNets", "Sec. IV-B1 (3)", v, "TransNets-Ext", "TransNets",
                     higher_is_better=False, dataset=ds)
        for base in SIMPLE_BASELINES:
            judge.better(f"SEMAX has a lower {m} than the simple baseline '{base}'", "issue 9", v, "SEMAX", base,
                         higher_is_better=False, dataset=ds)
    for fig, entity in (("Figure 4", "users"), ("Figure 5", "items")):
        curve = curves.get(f"{fig}/SEMAX")
        populated = [b for b, n in enumerate(curve["n"]) if n >= MIN_BIN_SIZE] if curve else []
        per_seed = [[row[b] for b in populated] for row in curve["RMSE per seed"]] if curve else []
        judge.trend(f"SEMAX's RMSE falls as its {entity} have more training ratings ({fig})", f"Sec. IV-B2, {fig}",
                    populated, per_seed, increasing=False, models=["SEMAX"], present=list(results), dataset=ds)
    if sweep and len(sweep) >= 3:
        betas = sorted(sweep)
        ends = [betas[0], betas[-1]]
        named = {"SEMAX": cfg.beta, **{f"SEMAX (beta={b:g})": b for b in ends}}
        for m in METRICS:
            v = {name: [float(r[m]) for r in sweep[b]] if b in sweep else None for name, b in named.items()}
            judge.better(f"SEMAX's {m} at beta = {cfg.beta:g} is lower than at both ends of the grid "
                         f"(beta = {ends[0]:g}, {ends[1]:g})", "Sec. IV-B3, Figure 6", v, "SEMAX",
                         [n for n in named if n != "SEMAX"], higher_is_better=False, dataset=ds)


# --------------------------------------------------------------------------- the record
def record_results(recorder: RunRecorder, cfg: SemaxConfig, run: SemaxRun) -> dict[str, Any]:
    """Write the run into ``recorder``: Table 3, Figures 4-6, health, learning curves, claims, notes, figures.

    Returns ``{"table": Table 3 as a DataFrame, "figures": {name: matplotlib figure}}``.
    """
    results, data = run.results, run.data
    tab = table3(results)
    for name, runs in results.items():
        compare_to = cfg.paper_dataset if name in PAPER_MODELS else None
        for m in METRICS:
            recorder.add_metric(MetricRow.from_values("Table 3", cfg.dataset, name, m, [r[m] for r in runs],
                                                      compare_to=compare_to, higher_is_better=False))
    curves = figure45_curves(cfg, data, results)
    for key, curve in curves.items():
        recorder.add_curve(key, curve)
    if run.sweep:
        fig6 = figure6_curve(run.sweep)
        recorder.add_curve("Figure 6/SEMAX", fig6)
        for m in METRICS:
            best = [fig6["x"][int(np.argmin(col))] for col in zip(*fig6[f"{m} per seed"])]
            recorder.add_metric(MetricRow.from_values("Sec. IV-B3", cfg.dataset, "SEMAX", f"best beta ({m})", best,
                                                      compare_to=cfg.paper_dataset, higher_is_better=None))
    if "SEMAX" in results and "TransNets-Ext" in results:
        for m in METRICS:
            vals = [_rel(a[m], b[m]) for a, b in zip(results["SEMAX"], results["TransNets-Ext"])]
            recorder.add_metric(MetricRow.from_values("Sec. IV-B1", cfg.dataset, "SEMAX", f"{m} reduction vs TransNets-Ext",
                                                      vals, compare_to=cfg.paper_dataset, higher_is_better=True))
    for name, runs in results.items():
        for seed, r in zip(cfg.seeds(), runs):
            if "curve" in r:
                recorder.add_learning_curve(name, f"seed {seed}", r["curve"])
    recorder.add_health(health_checks(cfg, data, results))  # before the claims: they read it
    for name, error in run.crashed.items():
        recorder.note(f"{name} crashed ({error}); its Table 3 rows are missing and the claims naming it are untestable.")
    absent = [m for m in PAPER_MODELS if m not in cfg.models]
    if absent:
        recorder.note(f"Not run (left out by the config's models): {', '.join(absent)}; the claims naming them are untestable.")
    if cfg.scale == "full":
        recorder.note("Full scale: models sized for a CPU (dim 32, reviews cut to 30 words, histories to 6 reviews) and "
                      "trained until the validation RMSE stopped improving; TransNets with a squared rating error "
                      "(Algorithm 1's L1 error fits the median rating). The paper scale keeps the paper's sizes.")
    record_tuning(recorder, cfg)
    decide_claims(ClaimJudge(recorder, unit="seed"), cfg, results, curves, run.sweep)
    recorder.add_table("training", [
        {"model": name, "seed": seed, "examples_per_s": r.get("examples_per_s"), "best_epoch": r["curve"]["best_epoch"],
         "epochs_run": r["curve"]["epochs"], "stopped_early": r["curve"]["stopped_early"]}
        for name, runs in results.items() for seed, r in zip(cfg.seeds(), runs) if "curve" in r])
    recorder.add_table("Table 3", tab.round(6).replace({np.nan: None}).to_dict("records"))
    return {"table": tab, "figures": make_figures(recorder, cfg)}


def record_tuning(recorder: RunRecorder, cfg: SemaxConfig) -> None:
    """Each model's study (``xrec tune semax``) into the record, or a note that the config's values were used."""
    from ...tuning import tuning_summary

    untuned = []
    for name in (*cfg.models, *(TUNED_BASELINES if cfg.simple_baselines else ())):
        if tuned_params(cfg, name):
            recorder.add_tuning(name, tuning_summary(PAPER_KEY, cfg.dataset, TUNED_NAMES.get(name, name),
                                                     cfg.results_dir or None, cfg.scale))
        else:
            untuned.append(name)
    recorder.add_untuned(untuned)


# --------------------------------------------------------------------------- figures and views
def plot_bins(curves: Mapping[str, Mapping[str, Any]], fig: str, path: Path | None = None):
    """Figure 4 or 5: MAE and RMSE per bin, one line per model."""
    import matplotlib.pyplot as plt

    sel = {k: c for k, c in curves.items() if c.get("figure") == fig}
    f, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    for ax, m in zip(axes, METRICS):
        for c in sel.values():
            style = "-" if c["model"] in PAPER_MODELS else ":"
            ax.plot(range(len(c["x"])), c[m], style, marker="o", ms=3, label=c["model"])
        first = next(iter(sel.values()), None)
        if first:
            ax.set_xticks(range(len(first["x"])), [f"{b}\n(n={n})" for b, n in zip(first["x"], first["n"])], fontsize=7)
            ax.set_xlabel(first["xlabel"])
        ax.set_ylabel(m)
    axes[1].legend(fontsize=7, ncol=2)
    f.suptitle(f"{fig}: error vs. the number of training ratings")
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def plot_beta(curve: Mapping[str, Any], path: Path | None = None):
    """Figure 6: SEMAX error against the loss weight beta."""
    import matplotlib.pyplot as plt

    f, axes = plt.subplots(1, 2, figsize=(9, 3.3))
    for ax, m in zip(axes, METRICS):
        sd = [s if s is not None else 0.0 for s in curve.get(f"{m} sd", [None] * len(curve["x"]))]
        ax.errorbar(curve["x"], curve[m], yerr=sd, marker="o", capsize=2)
        ax.set_xlabel(curve["xlabel"])
        ax.set_ylabel(m)
    f.suptitle("Figure 6: effect of the loss weight beta on SEMAX")
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def make_figures(recorder: RunRecorder, cfg: SemaxConfig) -> dict[str, Any]:
    """Figures 4-6 and the learning curves from the recorder, saved as PNG files and recorded as artifacts."""
    import matplotlib.pyplot as plt

    out_dir = figures_dir(PAPER_KEY, cfg)
    figs = {}
    for fig in ("Figure 4", "Figure 5"):
        path = out_dir / f"{fig.lower().replace(' ', '')}.png"
        figs[fig] = plot_bins(recorder.curves, fig, path)
        recorder.add_artifact(fig, path)
    if "Figure 6/SEMAX" in recorder.curves:
        path = out_dir / "figure6.png"
        figs["Figure 6"] = plot_beta(recorder.curves["Figure 6/SEMAX"], path)
        recorder.add_artifact("Figure 6", path)
    if recorder.learning_curves:
        path = out_dir / "learning_curves.png"
        figs["Learning curves"] = learning_curves_figure(recorder.learning_curves, path)
        recorder.add_artifact("Learning curves", path)
    for fig in figs.values():  # shown where the notebook displays them, not when drawn
        plt.close(fig)
    return figs


def describe_models(cfg: SemaxConfig, data: SemaxData) -> pd.DataFrame:
    """One row per model of Table 3: what it reads and its number of trainable parameters."""
    reads = {
        "NCF": "user and item ids", "DeepCoNN": "earlier reviews of user and item (CNN)",
        "TransNets": "earlier reviews (CNN); target review at training only",
        "TransNets-Ext": "as TransNets + user and item ids",
        "SEMA": "ids + earlier reviews, hierarchical LSTMs", "SEMAX": "as SEMA; target review at training only (related task)",
    }
    rows = []
    for name in cfg.models:
        n_params = None
        if name != "NCF":
            model = build_model(name, cfg, cfg.seed, tuned=tuned_params(cfg, name))
            n_params = sum(p.numel() for p in model._build(data.corpus).parameters())
        rows.append({"model": name, "reads": reads[name], "trainable parameters": n_params})
    return pd.DataFrame(rows)


def claims_frame(claims: Sequence[Claim | Mapping[str, Any]]) -> pd.DataFrame:
    """Claims as a table (a recorder's or a record's); older records without ``verdict`` get it from ``holds``."""
    rows = [dataclasses.asdict(c) if dataclasses.is_dataclass(c) else dict(c) for c in claims]
    for row in rows:
        if not row.get("verdict"):
            row["verdict"] = {True: "holds", False: "fails", None: "untestable"}[row.get("holds")]
    cols = ["claim", "verdict", "evidence", "source", "dataset"]
    return pd.DataFrame(rows, columns=cols) if not rows else pd.DataFrame(rows)[cols]


def health_frame(record: Mapping[str, Any]) -> pd.DataFrame | str:
    """A record's health checks as a table, or a line saying the record predates them."""
    if not record.get("health"):
        return "no health checks (record predates them; rerun pending)"
    return pd.DataFrame(record["health"])[["model", "check", "value", "floor", "passed", "detail"]]


def show_committed(records: Sequence[Mapping[str, Any]]) -> None:
    """Display each committed record's claims, health checks and Figures 4-6 (older records included)."""
    import matplotlib.pyplot as plt
    from IPython.display import display

    for rec in records:
        print(rec["dataset"], "-", rec["scale"], "-", rec.get("_path", ""))
        display(claims_frame(rec["claims"])[["claim", "verdict", "evidence"]])
        health = health_frame(rec)
        print(health) if isinstance(health, str) else display(health)
        figs = [plot_bins(rec["curves"], "Figure 4"), plot_bins(rec["curves"], "Figure 5")]
        if "Figure 6/SEMAX" in rec["curves"]:
            figs.append(plot_beta(rec["curves"]["Figure 6/SEMAX"]))
        if rec.get("learning_curves"):
            figs.append(learning_curves_figure(rec["learning_curves"]))
        for fig in figs:
            display(fig)
            plt.close(fig)


def committed_global_mean_floor(root: str | Path | None = None) -> str:
    """Per committed record of the chapter: which learned models' test RMSE is not below the global mean's.

    Each sentence also gives the mean rating of the reviews the models fit and of the test period
    (the record's data statistics): a test period rated lower than the past is a shift that no model
    trained on the past anticipates.
    """
    from ...report import committed_records, global_mean_floor_verdict

    sentences = []
    for record in committed_records(PAPER_KEY, root=root):
        text = f"**{record['dataset']}** (`{record['scale']}` scale"
        means = {row["part"]: row["mean rating"] for row in record.get("tables", {}).get("data statistics", [])}
        if "fit" in means and "test" in means:
            text += f"; mean rating {means['fit']:.2f} on the reviews the models fit, {means['test']:.2f} in the test period"
        checks = [c for c in record.get("health", []) if c["check"] == GLOBAL_MEAN_CHECK]
        text += "): " + (global_mean_floor_verdict(checks, "RMSE") if checks else "the record predates the health checks.")
        sentences.append(text)
    return "\n\n".join(sentences) or "No full-scale record of this chapter is committed yet."


def attention_table(model: Any, data: SemaxData, review: int) -> pd.DataFrame:
    """Words of review ``review`` with their user-item attention weights (Eq. 8), largest first."""
    alpha = model.attention(data.corpus, np.array([review]))[0]
    ids = data.corpus.tokens[review, : data.corpus.lengths[review]]
    words = data.vocab.decode(ids)
    words = list(words) if not isinstance(words, str) else words.split()
    return pd.DataFrame({"position": range(len(alpha)), "word": words[: len(alpha)], "alpha": alpha}).sort_values("alpha", ascending=False)


def attention_view(model: Any, data: SemaxData, n_reviews: int = 30):
    """Interactive view (ipywidgets) of SEMAX's word attention on training reviews; ``None`` without ipywidgets.

    The table is an ``HTML`` widget whose value is replaced on each pick: ``widgets.interactive``
    (an ``Output`` widget cleared on each call) intermittently deadlocks nbclient when papermill
    executes the notebook in batch (kernel idle, papermill waiting), as the NAR and MVAE browsers did.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    choices = [int(i) for i in data.fit_idx[-n_reviews:]]
    df = data.reviews

    def table(review: int) -> str:
        row = df.iloc[review]
        head = f"<p>user {html.escape(str(row['user']))}, item {html.escape(str(row['item']))}, rating {row['rating']:g}</p>"
        return head + attention_table(model, data, review).head(15).to_html(index=False)

    pick = widgets.Dropdown(options=choices, value=choices[0], description="review")
    view = widgets.HTML(value=table(choices[0]))
    pick.observe(lambda change: setattr(view, "value", table(change["new"])), names="value")
    return widgets.VBox([pick, view])
