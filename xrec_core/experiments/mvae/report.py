"""MVAE chapter report: metric rows, health checks, learning curves, claims, tables and figures.

:func:`record_run` is the one function that writes a run's results into its record, in this
order: metric rows, health checks (every generator, the retrieval baseline included, on this
dataset: unique-sentence ratio and empty outputs on every split's test part; training loss went
down for every learned model), learning curves, then the claims through
:class:`~xrec_core.experiments.common.ClaimJudge` (so a claim naming a model that failed a check
is *untestable*), then tables and figures.

Claims (units are the random splits; paired t-tests, trends by per-split slopes):

* Table 2 / Sec. 4.6: MVAE beats NRT, Att2Seq, NETE and PETER, one claim per metric; MVAE beats
  the retrieval baseline on BLEU-1 and ROUGE-L F1.
* Table 3 / Sec. 4.7: MVAE beats MVAE-NoKL and MVAE-NoMLF, one claim per metric.
* Fig. 6 / Sec. 4.8: MVAE-NoKL has a lower training NLL and a higher validation NLL than MVAE;
  MVAE has a lower validation NLL than MVAE-NoRN.
* Fig. 5 / Sec. 4.6: MVAE's gain over PETER (sentence BLEU-1, ROUGE-L) falls as the user's number
  of training samples rises (trend over user-count bins).
* Fig. 4 / Sec. 4.5: the two copies of a user grow more similar as the user's training examples
  rise (trend over user-count bins).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ... import health
from ...claims import unit_values
from ...records import MetricRow, load_records
from ..common import ClaimJudge, figures_dir
from .config import (EXPLAIN_METRICS, FIG6_MODELS, MVAE_MODELS, NEURAL_BASELINES, NEURAL_MODELS, PAPER_DATASET, RETRIEVAL,
                     RETRIEVALS, TABLE2_METRICS, TABLE3_METRICS, USER_RETRIEVAL, MVAEConfig)
from .data import ExplanationData
from .protocol import COUNT_BIN_EDGES, per_user_gains

#: the name of the Fig. 4 model in health checks and learning curves
FIG4_MODEL = "Plain VAE (Fig. 4)"


# ============================================================================ metric rows and tables
def metric_rows(splits: Sequence[Mapping[str, Any]], dataset: str) -> list[MetricRow]:
    """Table 2 (all models), Table 3 (MVAE variants) and the feature metrics as MetricRows over splits."""
    target = PAPER_DATASET.get(dataset)  # None for data the paper has no counterpart of (a user's own)
    rows: list[MetricRow] = []
    for name in models_in_every_split(splits):
        vals = {m: [s["models"][name]["metrics"][m] for s in splits] for m in splits[0]["models"][name]["metrics"]}
        in_paper = name in NEURAL_BASELINES or name == "MVAE"
        for m in TABLE2_METRICS:
            rows.append(MetricRow.from_values("Table 2", dataset, name, m, vals[m], compare_to=target if in_paper else None,
                                              higher_is_better=True))
        if name in MVAE_MODELS:
            t3_target = "peter-yelp" if name in ("MVAE", "MVAE-NoKL", "MVAE-NoMLF") else None
            for m in TABLE3_METRICS:
                rows.append(MetricRow.from_values("Table 3", dataset, name, m, vals[m], compare_to=t3_target, higher_is_better=True))
        for m in EXPLAIN_METRICS:
            rows.append(MetricRow.from_values("Explainability (PETER metrics)", dataset, name, m, vals[m],
                                              higher_is_better=m != "DIV"))
    return rows


def models_in_every_split(splits: Sequence[Mapping[str, Any]]) -> list[str]:
    """The models that finished on every split (a model that crashed on one split has no row)."""
    return [n for n in splits[0]["models"] if all(n in s["models"] for s in splits)]


def results_table(rows: Sequence[MetricRow], table: str) -> pd.DataFrame:
    """Wide view: one row per model, one column per metric (mean over splits)."""
    df = pd.DataFrame([{"model": r.model, "metric": r.metric, "value": r.value} for r in rows if r.table == table])
    if df.empty:
        return df
    order = list(dict.fromkeys(df["model"]))
    wide = df.pivot(index="model", columns="metric", values="value").loc[order]
    return wide[list(dict.fromkeys(df["metric"]))]


def examples_table(exp: ExplanationData, split: Mapping[str, Any], n: int, seed: int) -> list[dict[str, Any]]:
    """Table 4: ``n`` random test pairs with the reference and every model's explanation."""
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(len(split["test_rows"]), min(n, len(split["test_rows"])), replace=False))
    rows = []
    for k in idx:
        r = exp.df.iloc[split["test_rows"][k]]
        row = {"user": str(r["user"]), "item": str(r["item"]), "rating": float(r["rating"]), "feature": r["feature"],
               "Reference": " ".join(split["references"][k])}
        row.update({name: " ".join(m["hypotheses"][k]) for name, m in split["models"].items()})
        rows.append(row)
    return rows


def per_user_curves(gains: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, list[float]]]:
    """Fig. 5 as drawn: mean and 95% CI of sentence BLEU-1 / ROUGE-L per user training count, pooled over splits."""
    out: dict[str, dict[str, list[float]]] = {}
    cnt = np.concatenate([g["count"] for g in gains])
    for metric in ("BLEU-1", "ROUGE-L"):
        for name in gains[0][metric]:
            y = np.concatenate([g[metric][name] for g in gains])
            xs, ys, lo, hi, ns = [], [], [], [], []
            for c in np.unique(cnt):
                v = y[cnt == c]
                half = 1.96 * v.std(ddof=1) / np.sqrt(len(v)) if len(v) > 1 else 0.0
                xs.append(int(c))
                ys.append(float(v.mean()))
                lo.append(float(v.mean() - half))
                hi.append(float(v.mean() + half))
                ns.append(len(v))
            out[f"{metric}/{name}"] = {"x": xs, "y": ys, "lo": lo, "hi": hi, "n": ns}
    return out


# ============================================================================ health
def health_checks(splits: Sequence[Mapping[str, Any]], fig4: Sequence[Mapping[str, Any]], dataset: str) -> list[health.HealthCheck]:
    """Every generator's diversity on every split's test outputs; every learned model's training loss."""
    checks: list[health.HealthCheck] = []
    for s in splits:
        for name, m in s["models"].items():
            for c in health.generator_diversity(name, dataset, [" ".join(h) for h in m["hypotheses"]]):
                checks.append(dataclasses.replace(c, detail=f"split {s['split']}: {c.detail}"))
            if m["curve"]:
                c = health.loss_decreased(name, dataset, m["curve"]["train_loss"])
                checks.append(dataclasses.replace(c, detail=f"split {s['split']}: {c.detail}"))
    for k, f in enumerate(fig4):
        c = health.loss_decreased(FIG4_MODEL, dataset, f["curve"]["train_loss"])
        checks.append(dataclasses.replace(c, detail=f"split {k}: {c.detail}"))
    return checks


def health_table(checks: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per model and check: how many splits passed, and the worst value."""
    if not checks:
        return pd.DataFrame([{"health": "no health checks (record predates them; rerun pending)"}])
    df = pd.DataFrame(checks)
    worst = df.groupby(["model", "check"], sort=False).agg(passed=("passed", "sum"), units=("passed", "size"),
                                                           worst=("value", "min"), floor=("floor", "first"))
    worst["status"] = np.where(worst["passed"] == worst["units"], "ok", "FAILED")
    return worst.reset_index()


# ============================================================================ claims
def judge_claims(recorder, splits: Sequence[Mapping[str, Any]], gains: Sequence[Mapping[str, Any]],
                 fig4: Sequence[Mapping[str, Any]], rows: Sequence[MetricRow], dataset: str) -> None:
    """Decide the chapter's claims (module docstring) on this record; health checks must be stored first."""
    judge = ClaimJudge(recorder, unit="split")
    present = set(models_in_every_split(splits))

    def values(table: str, metric: str) -> dict[str, list[float] | None]:
        found = unit_values(rows, metric, table=table, dataset=dataset)
        return {m: found.get(m) for m in (*NEURAL_MODELS, RETRIEVAL)}

    for m in TABLE2_METRICS:
        judge.better(f"MVAE outperforms NRT, Att2Seq, NETE and PETER on {m}", "Table 2 / Sec. 4.6", values("Table 2", m),
                     "MVAE", list(NEURAL_BASELINES), higher_is_better=True, dataset=dataset)
    for m in ("BLEU-1", "ROUGE-L-F"):
        judge.better(f"MVAE beats the item-medoid retrieval baseline on {m} (issue 9)", "issue 9", values("Table 2", m),
                     "MVAE", RETRIEVAL, higher_is_better=True, dataset=dataset)
    for m in TABLE3_METRICS:
        judge.better(f"MVAE outperforms MVAE-NoKL and MVAE-NoMLF on {m}", "Table 3 / Sec. 4.7", values("Table 3", m),
                     "MVAE", ["MVAE-NoKL", "MVAE-NoMLF"], higher_is_better=True, dataset=dataset)

    # Fig. 6: training NLL of the kept epoch, and the kept (best) validation NLL, per split
    def loss_values(key: str) -> dict[str, list[float] | None]:
        out: dict[str, list[float] | None] = {}
        for name in FIG6_MODELS:
            if name not in present:
                out[name] = None
                continue
            curves = [s["models"][name] for s in splits]
            if key == "train":
                out[name] = [m["train_nll"][m["curve"]["best_epoch"] - 1] for m in curves]
            else:
                out[name] = [m["curve"]["valid"][m["curve"]["valid_epochs"].index(m["curve"]["best_epoch"])] for m in curves]
        return out

    judge.better("MVAE-NoKL reaches a lower training NLL than MVAE", "Fig. 6 / Sec. 4.7-4.8", loss_values("train"),
                 "MVAE-NoKL", "MVAE", higher_is_better=False, dataset=dataset)
    valid = loss_values("valid")
    judge.better("MVAE reaches a lower validation NLL than MVAE-NoKL", "Fig. 6 / Sec. 4.7-4.8", valid, "MVAE", "MVAE-NoKL",
                 higher_is_better=False, dataset=dataset)
    judge.better("MVAE reaches a lower validation NLL than MVAE-NoRN", "Fig. 6 / Sec. 4.8", valid, "MVAE", "MVAE-NoRN",
                 higher_is_better=False, dataset=dataset)

    # Fig. 5: the per-split gain of MVAE over PETER in each user-count bin falls with the count
    for metric in ("BLEU-1", "ROUGE-L"):
        settings, per_unit = _common_bins([g[f"{metric} gain by count bin"] for g in gains])
        judge.trend(f"MVAE's {metric} gain over PETER is larger for users with fewer training samples", "Fig. 5 / Sec. 4.6",
                    settings, per_unit, increasing=False, models=["MVAE", "PETER"], present=present, log_x=True,
                    dataset=dataset)
    # Fig. 4: the similarity of a user's two copies rises with the user's training examples
    settings, per_unit = _common_bins([f["by_count_bin"] for f in fig4])
    judge.trend("The two copies of a user become more similar the more training examples the user has", "Fig. 4 / Sec. 4.5",
                settings, per_unit, increasing=True, models=[FIG4_MODEL], present={FIG4_MODEL} if fig4 else set(), log_x=True,
                dataset=dataset)


def _common_bins(per_unit: Sequence[Sequence[float]]) -> tuple[list[float], list[list[float]]]:
    """The user-count bins with a value in every unit (their lower edges) and the units' values there."""
    if not per_unit:
        return [], []
    arr = np.asarray(per_unit, dtype=float)  # (units, bins)
    keep = np.all(np.isfinite(arr), axis=0)
    return [float(e) for e, k in zip(COUNT_BIN_EDGES, keep) if k], arr[:, keep].tolist()


# ============================================================================ the record
def missing_models(splits: Sequence[Mapping[str, Any]], cfg: MVAEConfig) -> list[str]:
    """Models of the scale's preset without a row in this run (left out, or crashed on some split)."""
    preset = MVAEConfig.from_scale(cfg.scale, dataset=cfg.dataset, data_dir=cfg.data_dir)
    finished = models_in_every_split(splits)
    return [m for m in (*RETRIEVALS, *preset.model_list) if m not in finished]


def reduction_notes(cfg: MVAEConfig) -> list[str]:
    """Plain statements of where a run is smaller than its scale's preset (stored in the record's notes)."""
    preset = MVAEConfig.from_scale(cfg.scale, dataset=cfg.dataset, data_dir=cfg.data_dir)
    notes = []
    if cfg.n_splits < preset.n_splits:
        notes.append(f"{cfg.n_splits} of the {cfg.scale} preset's {preset.n_splits} random splits (the paper averages 5); "
                     "chosen to fit the CPU time of one session")
    missing = [m for m in preset.model_list if m not in cfg.model_list]
    if missing:
        notes.append(f"models left out of this run: {', '.join(missing)}; the claims naming them are untestable")
    if cfg.anneal_a0 < 0 and "MVAE-NoKL" not in cfg.model_list:
        notes.append("MVAE-NoKL was not run, so Eq. 11's a0 (half of NoKL's steps to convergence) is 0 in this run")
    if cfg.scale == "full":
        notes.append("full preset: hidden size 96 for every generator (the paper: 768 for MVAE, the baselines' published "
                     "sizes) so that every model converges on a CPU; the paper preset keeps the paper's sizes")
    return notes


def record_run(recorder, exp: ExplanationData, splits: Sequence[dict[str, Any]], fig4: Sequence[dict[str, Any]],
               cfg: MVAEConfig, tuned: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, Any]:
    """Write metric rows, health checks, learning curves, claims, tables, tuning summaries and figure
    files of a run into ``recorder`` (``tuned``: the best parameters the run used, by model).

    Returns the figures (matplotlib) for display.
    """
    import matplotlib.pyplot as plt

    from ...plots import learning_curves_figure
    from .tuning import record_tuning

    dataset = cfg.dataset
    record_tuning(recorder, cfg, dict(tuned or {}))
    missing = missing_models(splits, cfg)
    if missing:
        recorder.note(f"rows missing from Tables 2-3 (not run or crashed): {', '.join(missing)}")
    for s in splits:
        for name, error in s.get("crashed", {}).items():
            recorder.note(f"{name} crashed on split {s['split']}: {error}")
    rows = metric_rows(splits, dataset)
    recorder.add_metrics(rows)
    recorder.add_health(health_checks(splits, fig4, dataset))
    for s in splits:
        for name, m in s["models"].items():
            if m["curve"]:
                recorder.add_learning_curve(name, f"split {s['split']}", m["curve"])
    for k, f in enumerate(fig4):
        recorder.add_learning_curve(FIG4_MODEL, f"split {k}", f["curve"])
    capped = sorted({f"{n} (split {s['split']})" for s in splits for n, m in s["models"].items()
                     if m["curve"] and not m["curve"]["stopped_early"]})
    if capped:
        recorder.note(f"stopped at the epoch cap ({cfg.max_epochs}) before validation stopped improving: {', '.join(capped)}")

    has_fig5 = {"MVAE", "PETER"} <= set(models_in_every_split(splits))
    gains = [per_user_gains(exp, s) for s in splits] if has_fig5 else []
    judge_claims(recorder, splits, gains, fig4, rows, dataset)

    recorder.add_table("Table 4 examples", examples_table(exp, splits[0], cfg.n_examples, cfg.seed))
    recorder.add_table("Explanation browser", examples_table(exp, splits[0], 60, cfg.seed + 1))
    recorder.add_table("splits", [{"split": s["split"], "train": len(s["train_rows"]), "valid": s["n_valid"],
                                   "test": len(s["test_rows"]), "vocabulary": s["vocab_size"]} for s in splits])
    recorder.add_table("model sizes", [{"model": n, "parameters": m["n_params"]} for n, m in splits[0]["models"].items()])

    figs: dict[str, Any] = {}
    out = figures_dir("mvae", cfg)
    curves5 = per_user_curves(gains) if gains else {}
    for key, c in curves5.items():
        recorder.add_curve(f"Fig. 5 {key}", c)
    curves6 = {}
    for name in FIG6_MODELS:
        if name in models_in_every_split(splits):
            m = splits[0]["models"][name]
            curves6[name] = {"epoch": list(range(1, len(m["train_nll"]) + 1)), "train_nll": m["train_nll"],
                             "valid_nll": m["curve"]["valid"], "train_loss": m["curve"]["train_loss"]}
            recorder.add_curve(f"Fig. 6 {name}", curves6[name])
    if fig4:
        c4 = {**fig4[0]["binned"], "spearman": fig4[0]["spearman"], "n_users": fig4[0]["n_users"]}
        recorder.add_curve("Fig. 4", c4)
        figs["Fig. 4"] = plot_fig4(c4, out / "fig4_noise.png")
        recorder.add_artifact("Fig. 4", out / "fig4_noise.png")
    if curves5:
        figs["Fig. 5"] = plot_fig5(curves5, out / "fig5_per_user.png")
        recorder.add_artifact("Fig. 5", out / "fig5_per_user.png")
    if curves6:
        figs["Fig. 6"] = plot_fig6(curves6, out / "fig6_losses.png")
        recorder.add_artifact("Fig. 6", out / "fig6_losses.png")
    figs["Learning curves"] = learning_curves_figure(recorder.learning_curves, out / "learning_curves.png")
    recorder.add_artifact("Learning curves", out / "learning_curves.png")
    plt.close("all")
    return figs


# ============================================================================ figures
def plot_fig4(curve: Mapping[str, Any], path=None):
    """Fig. 4: normalized cosine similarity of the two copies of a user vs. its number of training examples."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.2))
    ax.fill_between(curve["x"], curve["lo"], curve["hi"], alpha=0.25)
    ax.plot(curve["x"], curve["y"], marker=".")
    ax.set_xlabel("training examples of the user (bin mean)")
    ax.set_ylabel("normalized cosine similarity")
    ax.set_title(f"Fig. 4: two copies of each user (Spearman {curve.get('spearman', float('nan')):.2f})")
    if path is not None:
        from ...plots import save_figure

        save_figure(fig, path)
    return fig


def plot_fig5(curves: Mapping[str, Any], path=None):
    """Fig. 5: BLEU-1 and ROUGE-L (mean, 95% CI) vs. the user's training count, PETER vs MVAE."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, metric in zip(axes, ("BLEU-1", "ROUGE-L")):
        for key, c in curves.items():
            if key.startswith(metric + "/"):
                ax.errorbar(c["x"], c["y"], yerr=[np.subtract(c["y"], c["lo"]), np.subtract(c["hi"], c["y"])], capsize=3,
                            marker="o", label=key.split("/", 1)[1])
        ax.set_xlabel("training samples of the user (last bin: at least)")
        ax.set_ylabel(f"{metric} (%)")
        ax.legend(frameon=False)
    fig.suptitle("Fig. 5: quality vs. training samples of the user")
    fig.tight_layout()
    if path is not None:
        from ...plots import save_figure

        save_figure(fig, path)
    return fig


def plot_fig6(curves: Mapping[str, Any], path=None):
    """Fig. 6: training and validation loss (NLL per token) of MVAE and its Fig. 6 variants."""
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for name, c in curves.items():
        axes[0].plot(c["epoch"], c["train_nll"], label=name, marker="o")
        axes[1].plot(list(range(1, len(c["valid_nll"]) + 1)), c["valid_nll"], label=name, marker="o")
    for ax, title in zip(axes, ("(a) training loss", "(b) validation loss")):
        ax.set_xlabel("epoch")
        ax.set_ylabel("NLL per token")
        ax.set_title(title)
        ax.legend(frameon=False)
    fig.tight_layout()
    if path is not None:
        from ...plots import save_figure

        save_figure(fig, path)
    return fig


def plot_committed(records: Sequence[Mapping[str, Any]]) -> list:
    """Redraw Figs. 4-6 and the learning curves from the curves of committed run records (one set per dataset)."""
    from ...plots import learning_curves_figure

    figs = []
    for rec in records:
        curves = rec.get("curves", {})
        if "Fig. 4" in curves:
            f = plot_fig4(curves["Fig. 4"])
            f.axes[0].set_title(f"Fig. 4 ({rec['dataset']}, {rec['scale']})")
            figs.append(f)
        c5 = {k[len("Fig. 5 "):]: v for k, v in curves.items() if k.startswith("Fig. 5 ")}
        if c5:
            f = plot_fig5(c5)
            f.suptitle(f"Fig. 5 ({rec['dataset']}, {rec['scale']})")
            figs.append(f)
        c6 = {k[len("Fig. 6 "):]: v for k, v in curves.items() if k.startswith("Fig. 6 ")}
        if c6:
            f = plot_fig6(c6)
            f.suptitle(f"Fig. 6 ({rec['dataset']}, {rec['scale']})", y=1.02)
            figs.append(f)
        if rec.get("learning_curves"):
            f = learning_curves_figure(rec["learning_curves"])
            f.suptitle(f"Learning curves ({rec['dataset']}, {rec['scale']})", y=1.02)
            figs.append(f)
    return figs


# ============================================================================ reading records
def claims_table(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """Every claim of the records with its verdict (older records: derived from ``holds``)."""
    rows = []
    for rec in records:
        for c in rec.get("claims", []):
            verdict = c.get("verdict") or {True: "holds", False: "fails", None: "untestable"}[c.get("holds")]
            rows.append({"dataset": c.get("dataset") or rec.get("dataset"), "claim": c["claim"], "source": c["source"],
                         "verdict": verdict, "evidence": c.get("evidence", "")})
    return pd.DataFrame(rows, columns=["dataset", "claim", "source", "verdict", "evidence"])


def committed_health(records: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """The health summary of each committed record, or a line saying the record predates health checks."""
    frames = []
    for rec in records:
        df = health_table(rec.get("health") or [])
        df.insert(0, "dataset", rec.get("dataset"))
        frames.append(df)
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def explanation_browser(examples: Sequence[Mapping[str, Any]]):
    """Interactive view (ipywidgets): pick a test (user, item) pair, see every model's explanation.

    Returns the widget, or ``None`` when ipywidgets is unavailable; callers display the static
    table of the same examples as well, so the page renders without a kernel. The table is an
    ``HTML`` widget whose value is replaced on each pick: an ``Output`` widget with
    ``clear_output`` intermittently deadlocks nbclient when papermill executes the notebook.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None

    def table(k: int) -> str:
        r = examples[k]
        return pd.DataFrame({"explanation": {m: v for m, v in r.items() if m not in ("user", "item", "rating")}}).to_html()

    options = [(f"{r['user']} | {r['item']} | rating {r['rating']:g}", k) for k, r in enumerate(examples)]
    pick = widgets.Dropdown(options=options, description="user | item")
    view = widgets.HTML(value=table(0))
    pick.observe(lambda change: setattr(view, "value", table(change["new"])), names="value")
    return widgets.VBox([pick, view])


def describe_models(cfg: MVAEConfig) -> pd.DataFrame:
    """What each model of the chapter is, at this config's sizes."""
    rows = [
        {"model": RETRIEVAL, "kind": "retrieval (issue 9)", "sizes": "-", "inputs": "item, sentiment"},
        {"model": USER_RETRIEVAL, "kind": "retrieval", "sizes": "-", "inputs": "user, sentiment"},
        {"model": "NRT", "kind": "GRU decoder + rating MLP", "sizes": f"emb {cfg.nrt_d_emb}, hidden {cfg.nrt_d_hidden}",
         "inputs": "user, item"},
        {"model": "Att2Seq", "kind": "attribute encoder + LSTM with attention",
         "sizes": f"emb {cfg.att2seq_d_emb}, hidden {cfg.att2seq_d_hidden}, {cfg.att2seq_layers} layers",
         "inputs": "user, item, sentiment"},
        {"model": "NETE", "kind": "GFRU (context GRU + feature GRU, gated)", "sizes": f"emb {cfg.nete_d_emb}, hidden {cfg.nete_d_hidden}",
         "inputs": "user, item, sentiment, ground-truth feature"},
        {"model": "PETER", "kind": "Transformer with PETER mask, context + rating tasks",
         "sizes": f"d_model {cfg.peter_d_model}, {cfg.peter_layers} layers", "inputs": "user, item"},
    ]
    mv = (f"d_model {cfg.d_model}, {cfg.n_layers}+{cfg.n_layers} layers, n_rd=n_pd={cfg.n_rd}, n_rs=n_ps={cfg.n_rs}, "
          f"latents {[2 * cfg.d_model // 2 ** (cfg.n_rd + j + 1) for j in range(cfg.n_rs)]}")
    for name, what in (("MVAE", "recognition + prior + reconstruction networks, MLF with TKL"),
                       ("MVAE-NoKL", "Sec. 4.8: z = mu_rec, TKL replaced by MSE(mu_rec, mu_prior)"),
                       ("MVAE-NoMLF", "MVAE with the smallest-scale distribution only"),
                       ("MVAE-NoRN", "MVAE trained with the test-phase architecture (no recognition network)")):
        rows.append({"model": name, "kind": what, "sizes": mv, "inputs": "user, item, sentiment"})
    return pd.DataFrame([r for r in rows if r["model"] in RETRIEVALS or r["model"] in cfg.model_list])


def simple_baseline_summary(records: Sequence[Mapping[str, Any]]) -> str:
    """A plain-language sentence per record: where MVAE (and PETER) lose to each retrieval baseline (issue 9)."""
    out = []
    for rec in records:
        val = {(m["model"], m["metric"]): m["value"] for m in rec["metrics"] if m["table"] == "Table 2"}
        baselines = [r for r in RETRIEVALS if (r, "BLEU-1") in val]
        if not baselines:
            continue
        parts = []
        for model in ("MVAE", "PETER"):
            if (model, "BLEU-1") not in val:
                continue
            for baseline in baselines:
                lose = [m for m in TABLE2_METRICS if val[(model, m)] < val[(baseline, m)]]
                parts.append(f"{model} is below the {baseline[len('Retrieval ('):-1]} retrieval on {len(lose)} of "
                             f"{len(TABLE2_METRICS)} metrics" + (f" ({', '.join(lose)})" if lose else ""))
        best = "BLEU-1"  # the headline metric of Table 2
        leader = max((k[0] for k in val if k[1] == best), key=lambda name: val[(name, best)])
        out.append(f"**{rec['dataset']}** ({rec['scale']}): " + "; ".join(parts)
                   + f". Best {best}: {leader} ({val[(leader, best)]:.2f}).")
    return "\n\n".join(out) if out else "No record with the retrieval baseline yet."


# --------------------------------------------------------------------------- the collapse diagnostic (results/diag_mvae/)
#: the record folder of ``benchmarks/diag_mvae.py`` (kept apart from the chapter's runs in ``results/mvae/``)
MVAE_DIAGNOSTIC = "diag_mvae"
#: epochs of each probed fit that the chapter's table shows (besides the kept epoch); 0 is the initialisation
MVAE_DIAGNOSTIC_EPOCHS = (0, 1, 2)


@dataclasses.dataclass
class DiagnosticView:
    """What the chapter shows of a diagnostic record: sentences with its numbers, a table, a figure."""

    markdown: str
    table: pd.DataFrame
    figure: Any = None


def _per_scale(values: Iterable[float] | None) -> str:
    """``0.011, 0.002, 0.001`` (largest scale first); empty for a model without the quantity."""
    return "" if values is None else ", ".join(f"{v:.2g}" for v in values)


def _threads(n: int | None) -> str:
    return "one thread" if n == 1 else "every core" if not n else f"{n} threads"


def mvae_diagnostic_table(record: Mapping[str, Any], epochs: Iterable[int] = MVAE_DIAGNOSTIC_EPOCHS) -> pd.DataFrame:
    """The probes of ``record`` at ``epochs`` and at each fit's kept epoch, one row per model and epoch.

    Spreads are standard deviations over the validation pairs averaged over dimensions; KL values are
    nats per pair; per-scale values are listed largest scale first. NLLs are nats per token.
    """
    best = {f["model"]: f.get("best_epoch") for f in record["tables"]["fits"]}
    rows = []
    for p in record["tables"]["probes"]:
        kept = p["epoch"] == best.get(p["model"])
        if p["epoch"] not in epochs and not kept:
            continue
        after = "initialisation" if p["epoch"] == 0 else f"epoch {p['epoch']} ({p['steps']} steps)" + (", kept" if kept else "")
        rows.append({"model": p["model"], "after": after,
                     "KL(q_rec ‖ q_prior) per scale": _per_scale(p.get("kl_posterior_prior")),
                     "KL(q_rec ‖ N(0, I)) per scale": _per_scale(p.get("kl_posterior_standard")),
                     "spread of posterior means": _per_scale(p.get("posterior_mean_spread")),
                     "spread of prior means": _per_scale(p.get("prior_mean_spread")),
                     "spread of the decoder prefix": _per_scale(None if p.get("prefix_spread") is None else [p["prefix_spread"]]),
                     "NLL, own conditioning": round(p["nll_own"], 4),
                     "NLL, another pair's": round(p["nll_shuffled"], 4)})
    return pd.DataFrame(rows)


def mvae_diagnostic_markdown(record: Mapping[str, Any]) -> str:
    """Sentences stating the numbers of a ``diag_mvae`` record: how it was measured, what every fit wrote,
    how much each model gains from the right user and item, and where MVAE's latents and prefix went."""
    cfg, fits = record["config"], {f["model"]: f for f in record["tables"]["fits"]}
    split = record["tables"]["split"][0]
    probes: dict[str, dict[int, Mapping[str, Any]]] = {}
    for p in record["tables"]["probes"]:
        probes.setdefault(p["model"], {})[p["epoch"]] = p
    commit = (record.get("code_version", {}).get("git_commit") or "?")[:7]
    cpu_min = record.get("benchmark", {}).get("cpu_s", record.get("cpu_time_s", 0.0)) / 60
    parts = [f"Measured by `benchmarks/diag_mvae.py` (record `{Path(record.get('_path', '')).name}`, commit `{commit}`, "
             f"{cpu_min:.1f} CPU-minutes, {_threads(cfg.get('n_threads'))}) on split {split['split'] + 1} of "
             f"{record['dataset']} at the `{cfg.get('scale')}` preset ({split['train']} training, {split['valid']} "
             f"validation and {split['test']} test pairs)."]
    fitted = []
    for name, f in fits.items():
        scores = f"BLEU-1 {f['BLEU-1']:.1f}, BLEU-4 {f['BLEU-4']:.2f}, ROUGE-L F1 {f['ROUGE-L-F']:.1f}"
        distinct = f"{f['distinct']} distinct sentence{'s' if f['distinct'] != 1 else ''} for {f['test_pairs']} test pairs"
        if name not in probes:
            kind = name.removeprefix("Retrieval (").removesuffix(")")
            fitted.append(f"The {kind} retrieval baseline scores {scores} with {distinct}.")
            continue
        top = f"\"{f['top_sentence']}\"" if f["top_sentence"] else "the empty sentence"
        stop = "by patience" if f["stopped_early"] else "at the epoch cap"
        fitted.append(f"**{name}** stops {stop} after {f['epochs']} epochs ({f['epochs'] * f['steps_per_epoch']} updates; "
                      f"kept epoch {f['best_epoch']}, validation NLL {f['best_valid_nll']:.3f} per token) and writes "
                      f"{distinct} (unique-sentence ratio {f['unique_sentence_ratio']:.3g}; {scores}); its most frequent "
                      f"sentence, {top}, covers {f['top_share']:.0%} of them.")
    parts.append(" ".join(fitted))
    gains = []
    for name, by_epoch in probes.items():
        p = by_epoch[fits[name]["best_epoch"]]
        gain = round(p["nll_shuffled"] - p["nll_own"], 4) + 0.0  # + 0.0: no "-0.0000"
        gains.append(f"{name} {gain:.4f} nats per token ({gain / p['nll_own']:.1%} of {p['nll_own']:.3f})")
    parts.append("At its kept epoch, each model's validation NLL with every sentence conditioned on another pair's user, "
                 "item and rating exceeds the NLL with its own by: " + "; ".join(gains) + ".")
    latents = []
    for name, by_epoch in probes.items():
        if by_epoch[0].get("prefix_spread") is None:
            continue
        best = fits[name]["best_epoch"]
        kept, first = by_epoch[best], by_epoch.get(1, by_epoch[best])
        lowest = min((p for epoch, p in by_epoch.items() if 0 < epoch <= best), key=lambda p: p["prefix_spread"])
        dip = "" if lowest["epoch"] in (1, best) else \
            f" (lowest {lowest['prefix_spread']:.2g}, after {lowest['steps']} updates)"
        text = (f"{name}'s decoder prefix has a spread of {by_epoch[0]['prefix_spread']:.2g} over the validation pairs at "
                f"initialisation, {first['prefix_spread']:.2g} after {first['steps']} updates{dip} and "
                f"{kept['prefix_spread']:.2g} at its kept epoch")
        if kept.get("kl_posterior_prior") is not None:
            beta_term = cfg["beta"] * sum(kept["kl_posterior_standard"])
            text += (f"; there KL(q_rec ‖ q_prior) is {_per_scale(kept['kl_posterior_prior'])} nats per scale and "
                     f"KL(q_rec ‖ N(0, I)) {_per_scale(kept['kl_posterior_standard'])}, so TKL's beta term (beta = "
                     f"{cfg['beta']:g}) weighs at most {beta_term:.2g} nats per sentence")
        latents.append(text + ".")
    if latents:
        parts.append(" ".join(latents))
    return "\n\n".join(parts)


def mvae_diagnostic_figure(probes: Iterable[Mapping[str, Any]]):
    """Per epoch: the spread of each MVAE variant's decoder prefix (left, log scale) and every model's
    validation NLL gain from its own conditioning over another pair's (right)."""
    import matplotlib.pyplot as plt

    df = pd.DataFrame(list(probes))
    fig, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2))
    for k, (name, sub) in enumerate(df.groupby("model", sort=False)):
        style = {"marker": ".", "label": name, "color": f"C{k}"}  # one colour per model in both panels
        if "prefix_spread" in sub and sub["prefix_spread"].notna().any():
            left.plot(sub["epoch"], sub["prefix_spread"], **style)
        right.plot(sub["epoch"], sub["nll_shuffled"] - sub["nll_own"], **style)
    left.set_yscale("log")
    left.set(xlabel="epoch (0: initialisation)", ylabel="spread over validation pairs", title="decoder prefix")
    right.axhline(0, color="grey", lw=0.8)
    right.set(xlabel="epoch (0: initialisation)", ylabel="nats per token",
              title="NLL(another pair's) - NLL(own)")
    for ax in (left, right):
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def committed_mvae_diagnostic(*, root: str | Path | None = None) -> DiagnosticView:
    """The committed ``diag_mvae`` record (the first by name, when there are several) as sentences, a table
    and a figure; without one, a one-line note and an empty table."""
    from ...report import COMMITTED_RESULTS

    records = load_records(root or COMMITTED_RESULTS, MVAE_DIAGNOSTIC)
    if not records:
        return DiagnosticView(f"No committed MVAE diagnostic record under `results/{MVAE_DIAGNOSTIC}/` yet "
                              "(`python benchmarks/diag_mvae.py` writes it).", pd.DataFrame())
    record = records[0]
    return DiagnosticView(mvae_diagnostic_markdown(record), mvae_diagnostic_table(record),
                          mvae_diagnostic_figure(record["tables"]["probes"]))
