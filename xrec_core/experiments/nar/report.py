"""Tables, figures, health checks and claims of the NAR / CAR / CNR chapter.

:func:`record_results` is the one function that writes a run's results into its record: Table 2,
the Tables 3-8 metric rows, timings, health checks (every learned model against MostPop on
NDCG@10 and its training loss), learning curves, CNR's flip rates, the paper's claims (decided by
:class:`~xrec_core.experiments.common.ClaimJudge` over the seeds, after the health checks), Table 9
and Figs. 4-5. The rest draws or tabulates what a record holds, for the notebook.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...health import RANKER_FLOOR_RATIO, loss_decreased, mostpop_check, ranker_vs_mostpop
from ...records import MetricRow, RunRecorder
from ..common import ClaimJudge, figures_dir
from .config import (EXPLAIN_METRICS, EXPLAINERS, EXTRA_MODELS, LEARNED_MODELS, PAPER_DATASET, PAPER_MODELS,
                     RANK_METRICS, NARConfig)
from .data import NARData, table2

PAPER = "nar"
UnitResults = dict[str, list[dict[str, Any] | None]]


def per_seed(results: UnitResults, name: str, metric: str, part: str = "ranking") -> list[float] | None:
    """``name``'s value of ``metric`` on every seed, or ``None`` when the model is missing or crashed on a seed."""
    runs = results.get(name) or []
    if not runs or any(r is None or metric not in r.get(part, {}) for r in runs):
        return None
    return [float(r[part][metric]) for r in runs]


def record_results(recorder: RunRecorder, results: UnitResults, data: NARData, cfg: NARConfig) -> dict[str, Any]:
    """Write every result of the run into ``recorder``; return the figures for the notebook to show."""
    ds = cfg.dataset
    recorder.add_table("Table 2 (our data)", table2(data, cfg).to_dict("records"))
    table = PAPER_DATASET.get(ds, ("Tables 4-8", None))[0]
    # the paper's numbers are on the Amazon 2014 files themselves: compare only on those
    compare_to = ds if ds in PAPER_DATASET else None
    missing = []
    for name in PAPER_MODELS + EXTRA_MODELS:
        runs = [r for r in results.get(name, []) if r is not None]
        if not runs:
            missing.append(name)
            continue
        for metric in RANK_METRICS:
            recorder.add_metric(MetricRow.from_values(table, ds, name, metric, [r["ranking"][metric] for r in runs],
                                                      compare_to=compare_to if name in PAPER_MODELS else None))
        recorder.timings[f"{name} fit_s"] = float(np.mean([r["fit_s"] for r in runs]))
        recorder.timings[f"{name} examples_per_s"] = float(np.mean([r["examples_per_s"] for r in runs]))
        if name in EXPLAINERS:
            for metric in EXPLAIN_METRICS:
                recorder.add_metric(MetricRow.from_values(
                    "Table 3", ds, name, f"{metric}@{cfg.explain_k}", [r["explain"][metric] for r in runs],
                    compare_to=compare_to if metric in ("F1", "NDCG") else None))
        for seed_offset, r in enumerate(results[name]):
            for phase, curve in (r or {}).get("learning_curves", {}).items():
                label = name if phase == "base" else f"{name} ({phase})"
                recorder.add_learning_curve(label, f"seed {cfg.seed + seed_offset}", curve)
        if runs[0].get("flip_rates") and name in ("CNR", "CNR-L2"):
            rates = runs[0]["flip_rates"]
            recorder.add_curve(f"flip rate {name}", {"x": list(range(1, len(rates) + 1)), "y": rates,
                                                     "xlabel": "outer iteration", "ylabel": "training pairs flipped"})
    if missing:
        recorder.note(f"missing rows (crashed or not run): {', '.join(missing)}")
    _health(recorder, results, cfg)
    _claims(recorder, results, cfg)
    return _figures(recorder, results, data, cfg)


def _health(recorder: RunRecorder, results: UnitResults, cfg: NARConfig) -> None:
    """Every learned model: NDCG@10 at least 0.9x MostPop's (same run, same split), and its training loss went down."""
    mostpop = per_seed(results, "MostPop", "NDCG")
    floor = float(np.mean(mostpop)) if mostpop else float("nan")
    if mostpop is None:
        recorder.note("MostPop is missing: no ranker floor, every learned model fails its health check")
    checks = []
    for name in LEARNED_MODELS:
        runs = [r for r in results.get(name, []) if r is not None]
        if not runs:
            continue
        checks.append(ranker_vs_mostpop(name, cfg.dataset, float(np.mean([r["ranking"]["NDCG"] for r in runs])), floor,
                                        f"NDCG@{cfg.k}"))
        base = runs[0].get("learning_curves", {}).get("base")
        if base is not None:
            checks.append(loss_decreased(name, cfg.dataset, base["train_loss"]))
    recorder.add_health(checks)


def _claims(recorder: RunRecorder, results: UnitResults, cfg: NARConfig) -> None:
    """The paper's claims, paired over the seeds (call after the health checks are stored)."""
    judge = ClaimJudge(recorder, unit="seed")
    ndcg = {m: per_seed(results, m, "NDCG") for m in PAPER_MODELS + EXTRA_MODELS}
    f1 = {m: per_seed(results, m, "F1", "explain") for m in EXPLAINERS}
    judge.better("CAR outperforms every other model of Tables 4-8 (NDCG@10)", "Sec. 5.2, Tables 4-8", ndcg, "CAR",
                 [m for m in PAPER_MODELS if m != "CAR"], higher_is_better=True)
    judge.better("CNR beats CER (NDCG@10)", "Sec. 5.2", ndcg, "CNR", "CER", higher_is_better=True)
    judge.better("NAR is the weakest on small data sets (NDCG@10)", "Sec. 5.2, Table 4", ndcg, "NAR",
                 [m for m in PAPER_MODELS if m != "NAR"], higher_is_better=False)
    judge.better("CAR's explanations are far worse than NAR's and CNR's (F1)", "Sec. 5.3, Table 3", f1, "CAR",
                 ["NAR", "CNR"], higher_is_better=False)
    for name in PAPER_MODELS:  # each model tested on its own: no selection of the best by its mean first
        judge.better(f"{name} beats MostPop and tuned BPR (NDCG@10; our addition)", "issue 9", ndcg, name,
                     ["MostPop", "BPR (tuned)"], higher_is_better=True)


# --------------------------------------------------------------------------- explanations (Figs. 4-5, Table 9)
def explanation_vectors(results: UnitResults, data: NARData) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """GT and every explainer's explanation vectors of the first seed's sampled users."""
    from .protocol import decode_matrix

    first = {m: results[m][0] for m in EXPLAINERS if results.get(m) and results[m][0] is not None}
    if not first:
        return {}, np.zeros(0, np.int64)
    users = np.asarray(next(iter(first.values()))["explained_users"], dtype=np.int64)
    gt = np.zeros((len(users), len(data.feature_names)))
    for r, u in enumerate(users):
        gt[r, data.ground_truth[u]] = 1.0
    return {"GT": gt} | {m: decode_matrix(r["explanations"]) for m, r in first.items()}, users


def pearson_heatmap(vecs: dict[str, np.ndarray]) -> pd.DataFrame:
    """Fig. 4: mean over users of the Pearson correlation between two models' explanation vectors."""
    names = list(vecs)
    out = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    for a in names:
        for b in names:
            if a < b:
                va, vb = vecs[a], vecs[b]
                va = va - va.mean(1, keepdims=True)
                vb = vb - vb.mean(1, keepdims=True)
                den = np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1)
                r = np.divide((va * vb).sum(1), den, out=np.full(len(den), np.nan), where=den > 0)
                out.loc[a, b] = out.loc[b, a] = float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")
    return out


def top_words(vecs: dict[str, np.ndarray], users: np.ndarray, data: NARData, n_users: int = 3, k: int = 5,
              seed: int = 0) -> pd.DataFrame:
    """Table 9: top-k explanation words of a few random sampled users per model, beside their GT features."""
    rows_with_gt = [r for r, u in enumerate(users) if len(data.ground_truth[u]) >= k]
    chosen = list(np.random.default_rng(seed).permutation(rows_with_gt)[:n_users])
    out = []
    for r in chosen:
        u = int(users[r])
        row = {"user": u, "GT": ", ".join(data.feature_names[j] for j in data.ground_truth[u][:k])}
        for m in EXPLAINERS:
            if m in vecs:
                row[m] = ", ".join(data.feature_names[j] for j in np.argsort(-vecs[m][r], kind="stable")[:k])
        out.append(row)
    return pd.DataFrame(out)


def tsne_embedding(vecs: dict[str, np.ndarray], seed: int = 0) -> pd.DataFrame:
    """Fig. 5: 2-D t-SNE (scikit-learn) of every model's user explanation vectors, one fit per model."""
    from sklearn.manifold import TSNE

    frames = []
    for name, X in vecs.items():
        if np.ptp(X, axis=0).max(initial=0.0) == 0.0:  # identical vectors (an untrained explainer): nothing to embed
            frames.append(pd.DataFrame({"model": name, "x": np.zeros(len(X)), "y": np.zeros(len(X))}))
            continue
        perplexity = float(min(30.0, max(2.0, (len(X) - 1) / 3)))
        xy = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(X)
        frames.append(pd.DataFrame({"model": name, "x": xy[:, 0], "y": xy[:, 1]}))
    return pd.concat(frames, ignore_index=True)


def plot_pearson(matrix: pd.DataFrame, path: Path | None = None):
    """Fig. 4 as a heat map."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    fig, ax = plt.subplots(figsize=(4.2, 3.6))
    sns.heatmap(matrix.astype(float), annot=True, fmt=".2f", cmap="vlag", vmin=-1, vmax=1, square=True, ax=ax)
    ax.set_title("Fig. 4: Pearson correlation of explanations")
    fig.tight_layout()
    if path is not None:
        from ...plots import save_figure

        save_figure(fig, path)
    return fig


def plot_tsne(points: pd.DataFrame, path: Path | None = None):
    """Fig. 5: one scatter panel per model."""
    import matplotlib.pyplot as plt

    names = list(dict.fromkeys(points["model"]))
    fig, axes = plt.subplots(1, len(names), figsize=(3.2 * len(names), 3.2))
    for ax, name in zip(np.atleast_1d(axes), names):
        sub = points[points["model"] == name]
        ax.scatter(sub["x"], sub["y"], s=6, alpha=0.6)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("Fig. 5: t-SNE of users' explanation vectors")
    fig.tight_layout()
    if path is not None:
        from ...plots import save_figure

        save_figure(fig, path)
    return fig


def plot_curves(curves: dict[str, Any], prefix: str, path: Path | None = None):
    """Curves stored in a record under ``<prefix> <model>`` (CNR's flip rates)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.4))
    chosen = {k: v for k, v in curves.items() if k.startswith(prefix)}
    for name, c in chosen.items():
        ax.plot(c["x"], c["y"], marker=".", label=name[len(prefix):].strip())
    if chosen:
        first = next(iter(chosen.values()))
        ax.set_xlabel(first.get("xlabel", ""))
        ax.set_ylabel(first.get("ylabel", ""))
        ax.legend(frameon=False, fontsize=8)
    fig.tight_layout()
    if path is not None:
        from ...plots import save_figure

        save_figure(fig, path)
    return fig


def _figures(recorder: RunRecorder, results: UnitResults, data: NARData, cfg: NARConfig) -> dict[str, Any]:
    """Table 9, Fig. 4's table and the chapter's figures (saved beside the record and listed as artifacts)."""
    from ...plots import learning_curves_figure

    fig_dir = figures_dir(PAPER, cfg)
    figures: dict[str, Any] = {}
    vecs, users = explanation_vectors(results, data)
    if vecs:
        words = top_words(vecs, users, data, n_users=3, k=5, seed=cfg.seed)
        recorder.add_table("Table 9", words.to_dict("records"))
        figures["browser words"] = top_words(vecs, users, data, n_users=min(50, len(users)), k=5, seed=cfg.seed + 1)
        pearson = pearson_heatmap(vecs)
        recorder.add_table("Fig. 4", pearson.reset_index(names="model").to_dict("records"))
        figures["Figure 4"] = plot_pearson(pearson, fig_dir / "figure4_pearson.png")
        figures["Figure 5"] = plot_tsne(tsne_embedding(vecs, seed=cfg.seed), fig_dir / "figure5_tsne.png")
        recorder.add_artifact("Figure 4", fig_dir / "figure4_pearson.png")
        recorder.add_artifact("Figure 5", fig_dir / "figure5_tsne.png")
    if recorder.learning_curves:
        figures["Learning curves"] = learning_curves_figure(recorder.learning_curves, fig_dir / "learning_curves.png")
        recorder.add_artifact("Learning curves", fig_dir / "learning_curves.png")
    if any(name.startswith("flip rate") for name in recorder.curves):
        figures["CNR flip rates"] = plot_curves(recorder.curves, "flip rate", fig_dir / "flip_rates.png")
        recorder.add_artifact("CNR flip rates", fig_dir / "flip_rates.png")
    return figures


# --------------------------------------------------------------------------- tables for the notebook
def ranking_table(recorder: RunRecorder) -> pd.DataFrame:
    """Tables 4-8 layout: one row per model, mean ± std over seeds of each ranking metric, and its health."""
    from ...health import summarize

    rows: dict[str, dict[str, str]] = {}
    for m in recorder.metrics:
        if m.metric in RANK_METRICS and m.table != "Table 3":
            rows.setdefault(m.model, {})[m.metric] = f"{m.value:.4f} ± {m.std or 0.0:.4f}"
    table = pd.DataFrame.from_dict(rows, orient="index").reindex(columns=list(RANK_METRICS))
    health = summarize(recorder.health)
    table["health"] = [health.get(m, "floor" if m == "MostPop" else "") for m in table.index]
    return table


def explanation_table(recorder: RunRecorder) -> pd.DataFrame:
    """Table 3 layout: one row per explainer, the mean of each explanation metric."""
    return pd.DataFrame([{"model": m.model, "metric": m.metric, "mean": m.value} for m in recorder.metrics
                         if m.table == "Table 3"]).pivot(index="model", columns="metric", values="mean")


def claims_table(record: dict[str, Any]) -> pd.DataFrame:
    """A record's claims with their verdict (derived from ``holds`` for records that predate verdicts)."""
    rows = []
    for c in record.get("claims", []):
        c = dict(c) if isinstance(c, dict) else dict(vars(c))
        verdict = c.get("verdict") or {True: "holds", False: "fails", None: "untestable"}[c.get("holds")]
        rows.append({"claim": c["claim"], "verdict": verdict, "evidence": c.get("evidence", "")})
    return pd.DataFrame(rows, columns=["claim", "verdict", "evidence"])


def health_summary(record: dict[str, Any]) -> pd.DataFrame | str:
    """A record's health checks as a table, or the line saying the record predates them."""
    if not record.get("health"):
        return "no health checks (record predates them; rerun pending)"
    return pd.DataFrame(record["health"])[["model", "check", "value", "floor", "passed", "detail"]]


def committed_mostpop_multiples(root: str | Path | None = None) -> str:
    """Per committed record of the chapter: every learned ranker's NDCG@k as a multiple of MostPop's, and the floor.

    The multiples are the record's mean NDCG rows over the seeds (the ranking tables, not Table 3),
    largest first; which rankers fall below the floor of ``RANKER_FLOOR_RATIO`` x MostPop comes from
    the record's health checks.
    """
    from ...report import committed_records

    sentences = []
    for record in committed_records(PAPER, root=root):
        ndcg = {m["model"]: m for m in record.get("metrics", []) if m["metric"] == "NDCG" and m["table"] != "Table 3"}
        text = f"**{record['dataset']}** (`{record['scale']}` scale"
        if "MostPop" not in ndcg:
            sentences.append(text + "): no MostPop row, so no multiples.")
            continue
        mostpop = ndcg["MostPop"]["value"]
        multiples = sorted(((m, ndcg[m]["value"] / mostpop) for m in LEARNED_MODELS if m in ndcg),
                           key=lambda model_multiple: -model_multiple[1])
        text += (f", {ndcg['MostPop']['n']} seeds): NDCG@{record['config']['k']} as a multiple of MostPop's "
                 f"{mostpop:.4f}: " + ", ".join(f"{m} {v:.2f}x" for m, v in multiples))
        floor_check = mostpop_check(f"NDCG@{record['config']['k']}")
        floor_checks = [c for c in record.get("health", []) if c["check"] == floor_check]
        below = [c["model"] for c in floor_checks if not c["passed"]]
        if not floor_checks:
            text += " (the record predates the health checks)."
        elif below:
            text += f"; below the {RANKER_FLOOR_RATIO:g}x floor: {', '.join(below)}."
        else:
            text += f"; every one at or above the {RANKER_FLOOR_RATIO:g}x floor."
        sentences.append(text)
    return "\n\n".join(sentences) or "No full-scale record of this chapter is committed yet."


def explanation_browser(words: pd.DataFrame):
    """Interactive view (ipywidgets): pick a user, see the ground truth and every model's top explanation words.

    Returns the widget, or ``None`` without ipywidgets; the caller shows the static table as well,
    so the published page renders without a kernel. The table is an ``HTML`` widget whose value is
    replaced on each pick: an ``Output`` widget with ``clear_output`` intermittently deadlocks
    nbclient when papermill executes the notebook in batch.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None

    def table(row: int) -> str:
        return words.iloc[[row]].set_index("user").T.to_html()

    pick = widgets.Dropdown(options=[(f"user {u}", k) for k, u in enumerate(words["user"])], description="user")
    view = widgets.HTML(value=table(0))
    pick.observe(lambda change: setattr(view, "value", table(change["new"])), names="value")
    return widgets.VBox([pick, view])
