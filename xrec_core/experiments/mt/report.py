"""The MT chapter's record: metric rows (Tables 2-4, Sec. 4.3), health checks, learning curves,
claims and figures, all written by :func:`record_results`; and the tables the notebook shows.

Order matters: the health checks go into the record before the claims, because
:class:`~xrec_core.experiments.common.ClaimJudge` makes every claim that names an unhealthy model
*untestable*. Every claim is a paired test over the folds (``unit="fold"``); a model that did not
run on every fold (crashed, left out by the config) makes the claims naming it untestable.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ...claims import paired_p_value
from ...health import HealthCheck, above_chance, global_mean_check, loss_decreased, rating_below_global_mean
from ...plots import learning_curves_figure, save_figure
from ...records import MetricRow, RunRecorder
from ..common import ClaimJudge, figures_dir
from .config import (DISCRIMINATORS, LM_BASELINES, MT_RATING, MT_TEXT, PAPER_KEY, RATING_BASELINES, SIMPLE_BASELINES,
                     MTConfig)

TABLE_OF = {"MSE": "Table 2", "perplexity": "Table 3", "tf-idf": "Table 4", "accuracy": "Sec. 4.3"}
#: the rating models held to the global-mean floor (every learned rating model of the chapter)
LEARNED_RATING = (*MT_RATING, *RATING_BASELINES, "User+item bias", "Biased MF (tuned)")
NO_HEALTH = "no health checks (record predates them; rerun pending)"
#: the global-mean floor check of a model's test MSE, as :func:`~xrec_core.health.rating_below_global_mean` names it
GLOBAL_MEAN_CHECK = global_mean_check("MSE")


def _acc(pair: Sequence[int]) -> float:
    return pair[0] / pair[1] if pair[1] else float("nan")


def per_fold(results: Mapping[str, Any]) -> dict[tuple[str, str], dict[int, float]]:
    """``{(metric, model): {fold: value}}`` of every number the protocol measured."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for f in results["folds"]:
        k, mt = int(f["fold"]), f["MT"]
        vals: dict[tuple[str, str], float] = {("MSE", "MT"): mt["MSE"]}
        for metric in ("perplexity", "tf-idf"):
            vals.update({(metric, m): v for m, v in mt[metric].items()})
        vals.update({("accuracy", who): _acc(d["shuffled labels"]) for who, d in mt["discriminators"].items()})
        vals.update({("MSE", m): r["MSE"] for m, r in f["ablations"].items() if r is not None})
        for name, r in f["rating"].items():
            if r is None:
                continue
            if name == "simple":
                vals.update({("MSE", m): v for m, v in r["MSE"].items()})
            else:
                vals[("MSE", name)] = r["MSE"]
        for name, r in f["text"].items():
            for metric in ("perplexity", "tf-idf"):
                if r is not None and metric in r:
                    vals[(metric, name)] = r[metric]
        for key, v in vals.items():
            out.setdefault(key, {})[k] = float(v)
    return out


def _fold_values(vals: Mapping[tuple[str, str], Mapping[int, float]], metric: str, folds: Sequence[int]
                 ) -> dict[str, list[float] | None]:
    """``{model: [value per fold]}`` over ``folds``; ``None`` for a model missing on any of them."""
    out: dict[str, list[float] | None] = {}
    for (met, model), by_fold in vals.items():
        if met == metric:
            out[model] = [by_fold[k] for k in folds] if all(k in by_fold for k in folds) else None
    return out


def health_checks(cfg: MTConfig, results: Mapping[str, Any], vals: Mapping[tuple[str, str], Mapping[int, float]]
                  ) -> list[HealthCheck | dict[str, Any]]:
    """Every learned model's training-health checks on this run.

    * rating models: mean test MSE over the folds it ran on below the global mean's on the same
      folds (computed in this run, on the same splits);
    * both discriminators: held-out accuracy on their own task (real vs. generated test reviews),
      summed over folds, above chance (binomial test);
    * generators (MT-U/I/P and the explanation baselines): distinct and non-empty outputs on every fold;
    * the trained networks: training loss went down on every fold (MT's teacher-forcing phase,
      MT-decoder's encoder phase, the neural language models, ConvMF+).
    """
    ds = cfg.dataset
    checks: list[HealthCheck | dict[str, Any]] = []
    checks.extend(global_mean_checks(ds, {model: by_fold for (metric, model), by_fold in vals.items() if metric == "MSE"}))
    for who in DISCRIMINATORS:
        pairs = [f["MT"]["discriminators"][who]["own task, held-out"] for f in results["folds"]
                 if who in f["MT"]["discriminators"]]
        if pairs:
            checks.append(above_chance(who, ds, sum(p[0] for p in pairs), sum(p[1] for p in pairs),
                                       check="held-out accuracy on its own task (real vs generated) above chance"))
    diversity: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for f in results["folds"]:
        per_model = dict(f["MT"]["diversity"])
        per_model.update({name: r["diversity"] for name, r in f["text"].items() if r is not None})
        for model, model_checks in per_model.items():
            for c in model_checks:
                diversity.setdefault((model, c["check"]), []).append({**c, "fold": f["fold"]})
    for (model, check), per in diversity.items():
        worst = min(per, key=lambda c: (c["passed"], c["value"] if check != "empty outputs" else -c["value"]))
        checks.append(HealthCheck(model, ds, check, worst["value"], worst["floor"], all(c["passed"] for c in per),
                                  f"worst of {len(per)} folds (fold {worst['fold']}): {worst['detail']}"))
    for model, curves in _training_curves(results).items():
        per = [loss_decreased(model, ds, c["train_loss"]) for c in curves.values()]
        bad = [unit for unit, c in zip(curves, per) if not c.passed]
        checks.append(HealthCheck(model, ds, "training loss went down", float(sum(c.passed for c in per)), float(len(per)),
                                  not bad, f"on {len(per) - len(bad)} of {len(per)} folds" + (f" (not on {', '.join(bad)})" if bad else "")))
    return checks


def global_mean_checks(dataset: str, mse_by_fold: Mapping[str, Mapping[int, float]]) -> list[HealthCheck]:
    """The global-mean floor of every learned rating model in ``mse_by_fold`` (``{model: {fold: test MSE}}``).

    A model's mean test MSE over the folds it shares with the ``"Global mean"`` row is held to the
    global mean's mean over the same folds (:func:`~xrec_core.health.rating_below_global_mean`).
    """
    floor = mse_by_fold.get("Global mean", {})
    checks = []
    for model in LEARNED_RATING:
        by_fold = mse_by_fold.get(model, {})
        common = sorted(set(by_fold) & set(floor))
        if common:
            checks.append(rating_below_global_mean(model, dataset, float(np.mean([by_fold[k] for k in common])),
                                                   float(np.mean([floor[k] for k in common]))))
    return checks


#: the learning curve whose training loss must go down, per model (the adversarial phase's
#: policy-gradient loss has no such expectation and is not checked)
_LOSS_PHASE = {"MT": "generator pre-training", "MT-encoder": "generator pre-training", "MT-decoder": "encoder training"}


def _training_curves(results: Mapping[str, Any]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{model: {"fold<k>": curve}}`` of the curve each model's loss check reads."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for f in results["folds"]:
        unit = f"fold{f['fold']}"
        out.setdefault("MT", {})[unit] = f["MT"]["curves"][_LOSS_PHASE["MT"]]
        for name, r in [*f["ablations"].items(), *f["rating"].items(), *f["text"].items()]:
            if r is not None and r.get("curves"):
                out.setdefault(name, {})[unit] = r["curves"][_LOSS_PHASE.get(name, "training")]
    return out


def record_results(recorder: RunRecorder, cfg: MTConfig, results: Mapping[str, Any]) -> None:
    """Write the run into the record: metric rows, health checks, learning curves, claims, Figure 3,
    the learning-curve and table figures, the examples and the notes on anything missing."""
    vals = per_fold(results)
    ds, paper_ds = cfg.dataset, cfg.paper_dataset
    folds = [int(f["fold"]) for f in results["folds"]]
    recorder.add_table("fold coverage", [{"metric": metric, "model": model, "folds": sorted(by_fold)}
                                         for (metric, model), by_fold in vals.items()])
    for (metric, model), by_fold in vals.items():
        compare = None if model in SIMPLE_BASELINES else paper_ds or None
        v = [by_fold[k] for k in sorted(by_fold)]
        recorder.add_metric(MetricRow.from_values(TABLE_OF[metric], ds, model, metric, v, compare_to=compare,
                                                  higher_is_better=metric in ("tf-idf", "accuracy")))
    _record_discriminators(recorder, results)
    # learning curves (every fit of every fold)
    for f in results["folds"]:
        unit = f"fold{f['fold']}"
        for phase, curve in f["MT"]["curves"].items():
            recorder.add_learning_curve(f"MT: {phase}", unit, curve)
        for name, r in [*f["ablations"].items(), *f["rating"].items(), *f["text"].items()]:
            for phase, curve in ((r or {}).get("curves") or {}).items():
                recorder.add_learning_curve(name if phase == "training" else f"{name}: {phase}", unit, curve)
    _record_tuning(recorder, cfg)
    # health BEFORE the claims
    recorder.add_health(health_checks(cfg, results, vals))
    _record_claims(recorder, cfg, results, vals, folds)
    first = results["folds"][0]["MT"]
    for name, curve in first.get("fig3", {}).items():
        recorder.add_curve(f"Figure 3/MT-{name}", {"x": curve["step"], "y": curve["accuracy"], "label": f"MT-{name}",
                                                   "xlabel": "discriminator training step",
                                                   "ylabel": "held-out accuracy", "dataset": ds})
    if first.get("examples"):
        recorder.add_table("Sec. 4.4 examples", first["examples"])
    _record_notes(recorder, cfg, results, vals, folds)
    recorder.add_table("folds", [{"fold": f["fold"], "n_train": f["n_train"], "n_valid": f["n_valid"],
                                  "n_test": f["n_test"], "lambda_U = lambda_V": f["lambda"]} for f in results["folds"]])
    make_figures(recorder, cfg)


def _record_tuning(recorder: RunRecorder, cfg: MTConfig) -> None:
    """The study behind every model that ran with tuned parameters (``xrec tune mt``)."""
    from .protocol import TUNED_MODELS, tuned_params

    tuned = [name for name in TUNED_MODELS if tuned_params(cfg, name)]
    ran = {row.model for row in recorder.metrics}
    recorder.add_untuned(name for name in TUNED_MODELS if name in ran and name not in tuned)
    from ...tuning import tuning_summary

    for name in tuned:
        recorder.add_tuning(name, tuning_summary(PAPER_KEY, cfg.dataset, name, cfg.results_dir or None, cfg.scale))


def _record_discriminators(recorder: RunRecorder, results: Mapping[str, Any]) -> None:
    rows = []
    for f in results["folds"]:
        for who, d in f["MT"]["discriminators"].items():
            rows.append({"fold": f["fold"], "discriminator": who,
                         **{f"{test} accuracy": round(_acc(pair), 4) for test, pair in d.items()},
                         "test reviews x 2": d["shuffled labels"][1]})
    recorder.add_table("Sec. 4.3 discriminators", rows)


def _record_claims(recorder: RunRecorder, cfg: MTConfig, results: Mapping[str, Any],
                   vals: Mapping[tuple[str, str], Mapping[int, float]], folds: list[int]) -> None:
    judge = ClaimJudge(recorder, unit="fold")
    mse_v, ppl_v, tfidf_v = (_fold_values(vals, m, folds) for m in ("MSE", "perplexity", "tf-idf"))
    judge.better("MT has a lower MSE than PMF, HFT, CTR and ConvMF+ (JMARS left out)", "Sec. 4.1, Table 2",
                 mse_v, "MT", list(RATING_BASELINES), higher_is_better=False)
    judge.better("MT has a lower MSE than the simple baselines", "issue 9", mse_v, "MT", list(SIMPLE_BASELINES),
                 higher_is_better=False)
    judge.better("Removing the encoder or the decoder increases the MSE", "Sec. 4.1, Table 2", mse_v, "MT",
                 ["MT-encoder", "MT-decoder"], higher_is_better=False)
    judge.better("MT-P has a lower perplexity than the trigram language model", "Sec. 4.2, Table 3", ppl_v, "MT-P",
                 "N-gram", higher_is_better=False)
    judge.better("MT-P has a lower perplexity than every baseline", "Sec. 4.2, Table 3", ppl_v, "MT-P",
                 list(LM_BASELINES), higher_is_better=False)
    judge.better("MT-P has a higher tf-idf similarity than every baseline", "Sec. 4.2, Table 4", tfidf_v, "MT-P",
                 [*LM_BASELINES, "Opinosis"], higher_is_better=True)
    judge.better("MT-P has the lowest perplexity of MT-U, MT-I, MT-P", "Sec. 4.2, Table 3", ppl_v, "MT-P",
                 ["MT-U", "MT-I"], higher_is_better=False)
    acc_v = _fold_values(vals, "accuracy", folds)
    for who in DISCRIMINATORS:
        judge.better(f"The {who} tells real from swapped {who.split()[0]} labels above chance (50%)", "Sec. 4.3",
                     {**acc_v, "chance (50%)": [0.5] * len(folds)}, who, "chance (50%)", higher_is_better=True)
    fig3 = [f["MT"].get("fig3") for f in results["folds"]]
    if all(fig3):
        steps = fig3[0][next(iter(fig3[0]))]["step"]
        per_fold = [np.mean([c["accuracy"] for c in f.values()], axis=0).tolist() for f in fig3]
        judge.trend("A fresh discriminator is first fooled by the trained generator and learns to detect its samples "
                    "over training (accuracy rises with the step)", "Sec. 4.3, Figure 3", steps, per_fold,
                    increasing=True, models=list(MT_TEXT))


def _record_notes(recorder: RunRecorder, cfg: MTConfig, results: Mapping[str, Any],
                  vals: Mapping[tuple[str, str], Mapping[int, float]], folds: list[int]) -> None:
    ablations = ("MT-encoder", "MT-decoder") if cfg.ablations else ()
    expected = [("MSE", m) for m in ("MT", *ablations, *SIMPLE_BASELINES, *cfg.rating_baselines)]
    expected += [("perplexity", m) for m in (*MT_TEXT, *cfg.lm_baselines)]
    expected += [("tf-idf", m) for m in (*MT_TEXT, *cfg.lm_baselines, *(("Opinosis",) if cfg.opinosis else ()))]
    for metric, model in expected:
        have = sorted(vals.get((metric, model), {}))
        if have != folds:
            recorder.note(f"Baseline row missing: {model} ({metric}) has {len(have)} of {len(folds)} folds "
                          f"({'none' if not have else have}); the claims naming it are untestable.")
    left_out = [m for m in RATING_BASELINES if m not in cfg.rating_baselines] + \
               [m for m in LM_BASELINES if m not in cfg.lm_baselines]
    if left_out:
        recorder.note("Left out of this run by its config: " + ", ".join(left_out) + " (claims naming them are untestable).")
    for name, err in results.get("failed", {}).items():
        recorder.note(f"Baseline {name} crashed and is missing from the tables: {err}")
    if results.get("unfinished"):
        recorder.note("Run assembled from finished units only (finished_only=True); these units had not "
                      "finished in the time available and are missing from the tables: " + ", ".join(results["unfinished"]))
    recorder.note("Every model is fitted on the training folds minus a validation split "
                  f"({cfg.valid_frac:.0%} of them) and early-stopped or tuned on it; MT's four phases, the neural "
                  f"language models and ConvMF+ stop after {cfg.patience} epochs without validation improvement "
                  f"(caps {cfg.max_epochs}, {cfg.lm_max_epochs}, {cfg.baseline_epochs}); PMF and HFT stop after "
                  f"{cfg.step_patience} full-batch steps without a lower validation MSE (caps {cfg.pmf_n_iter} and "
                  f"{cfg.hft_epochs}); CTR runs its ALS sweeps without early stopping.")


# ---------------------------------------------------------------------------------- tables for the notebook
def results_table(recorder: RunRecorder, metric: str) -> pd.DataFrame:
    """Models x (paper, ours mean, spread, gap) for one metric of the record, plus the paper's rows
    for models this run did not produce (JMARS), with ``ours`` empty."""
    from ...reference import load_reference, paper_vs_ours

    df = paper_vs_ours(recorder.as_dict())
    df = df[df["metric"] == metric]
    ref = load_reference()
    paper_ds = next((d for d in df["paper_dataset"] if d), "")
    extra = ref[(ref["paper"] == PAPER_KEY) & (ref["metric"] == metric) & (ref["dataset"] == paper_ds)
                & ~ref["model"].isin(df["model"])]
    extra = pd.DataFrame({"table": extra["table"], "dataset": recorder.dataset, "paper_dataset": paper_ds,
                          "model": extra["model"], "metric": metric, "paper_value": extra["value"],
                          "verdict": "not run here"})
    return pd.concat([df, extra], ignore_index=True) if len(extra) else df.reset_index(drop=True)


def claims_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """The record's claims with their verdict (derived from ``holds`` for records that predate verdicts)."""
    rows = [{"claim": c["claim"], "source": c["source"],
             "verdict": c.get("verdict") or {True: "holds", False: "fails", None: "untestable"}[c.get("holds")],
             "evidence": c.get("evidence", "")} for c in record.get("claims", [])]
    return pd.DataFrame(rows, columns=["claim", "source", "verdict", "evidence"])


def health_table(record: Mapping[str, Any]) -> pd.DataFrame:
    """The record's health checks, or one row saying the record predates them."""
    if not record.get("health"):
        return pd.DataFrame([{"model": "", "check": NO_HEALTH}])
    return pd.DataFrame(record["health"])[["model", "check", "value", "floor", "passed", "detail"]]


def discriminator_table(recorder: RunRecorder) -> pd.DataFrame:
    """Sec. 4.3 per fold: shuffled-label accuracy and the discriminators' own-task accuracies."""
    return pd.DataFrame(recorder.tables.get("Sec. 4.3 discriminators", []))


def examples_table(recorder: RunRecorder) -> pd.DataFrame:
    """Sec. 4.4: generated explanations beside the ground truth."""
    return pd.DataFrame(recorder.tables.get("Sec. 4.4 examples", []))


def examples_view(examples: pd.DataFrame):
    """A dropdown over the Sec. 4.4 examples showing one pair's texts; ``None`` without ipywidgets or examples.

    The texts are an ``HTML`` widget whose value is replaced on each pick: ``widgets.interact`` (an
    ``Output`` widget cleared on each call) deadlocked nbclient when papermill executed this chapter in
    batch (kernel idle, papermill waiting), as it had in the NAR, MVAE and SEMAX chapters.
    """
    try:
        import ipywidgets as widgets
    except ImportError:
        return None
    if examples.empty:
        return None

    def texts(row: int) -> str:
        return examples.iloc[row].to_frame("text").to_html()

    pick = widgets.Dropdown(options=[(f"{r['user']} / {r['item']}", k) for k, (_, r) in enumerate(examples.iterrows())],
                            value=0, description="pair")
    view = widgets.HTML(value=texts(0))
    pick.observe(lambda change: setattr(view, "value", texts(change["new"])), names="value")
    return widgets.VBox([pick, view])


def where_mt_loses(record: Mapping[str, Any]) -> pd.DataFrame:
    """Every baseline whose fold-mean beats MT (MSE) or MT-P (perplexity, tf-idf) in a run record,
    with the paired t-test p-value across folds: the chapter's plain statement of MT's losses."""
    rows = {(m["metric"], m["model"]): m for m in record.get("metrics", [])}
    out = []
    for metric, ours, lower in (("MSE", "MT", True), ("perplexity", "MT-P", True), ("tf-idf", "MT-P", False)):
        if (metric, ours) not in rows:
            continue
        a = rows[(metric, ours)]
        for (met, model), b in rows.items():
            if met != metric or model.startswith("MT"):
                continue
            if (b["value"] < a["value"]) if lower else (b["value"] > a["value"]):
                same = len(a["values"]) == len(b["values"]) > 1
                out.append({"dataset": record.get("dataset", ""), "table": TABLE_OF[metric], "metric": metric,
                            "MT model": ours, "MT": a["value"], "baseline": model, "baseline value": b["value"],
                            "p (paired t-test)": paired_p_value(a["values"], b["values"]) if same else float("nan")})
    return pd.DataFrame(out, columns=["dataset", "table", "metric", "MT model", "MT", "baseline", "baseline value",
                                      "p (paired t-test)"])


def recorded_mse_by_fold(record: Mapping[str, Any]) -> dict[str, dict[int, float]]:
    """``{model: {fold: test MSE}}`` of a record, from its MSE rows and its fold-coverage table."""
    coverage = record.get("tables", {}).get("fold coverage", [])
    folds = {row["model"]: row["folds"] for row in coverage if row["metric"] == "MSE"}
    return {m["model"]: dict(zip(folds[m["model"]], m["values"])) for m in record.get("metrics", [])
            if m["metric"] == "MSE" and m["model"] in folds}


def committed_global_mean_floor(root: str | Path | None = None) -> str:
    """Per committed record of the chapter, which learned rating models' test MSE is not below the global mean's.

    The verdicts are the record's own health checks; a record that predates them is judged by the
    same rule (:func:`global_mean_checks`) from its MSE rows, and its sentence says so.
    """
    from ...report import committed_records, global_mean_floor_verdict

    sentences = []
    for record in committed_records(PAPER_KEY, root=root):
        checks = [c for c in record.get("health", []) if c["check"] == GLOBAL_MEAN_CHECK]
        source = "its health checks"
        if not checks:
            checks = [c.as_dict() for c in global_mean_checks(record["dataset"], recorded_mse_by_fold(record))]
            source = "its MSE rows by the same rule: the record predates the health checks"
        text = f"**{record['dataset']}** (`{record['scale']}` scale; from {source}): "
        if not checks:
            text += "no learned rating model ran beside the global mean."
        else:
            text += global_mean_floor_verdict(checks, "MSE", "learned rating model")
        sentences.append(text)
    return "\n\n".join(sentences) or "No full-scale record of this chapter is committed yet."


# ---------------------------------------------------------------------------------- figures
def plot_figure3(curves: Mapping[str, Any], path: Path | None = None):
    """Figure 3: discriminator accuracy over training steps against the fully trained generator."""
    import matplotlib.pyplot as plt

    f, ax = plt.subplots(figsize=(6, 3.5))
    for key, c in curves.items():
        if key.startswith("Figure 3/"):
            ax.plot(c["x"], c["y"], marker="o", ms=3, label=f"{c['label']} ({c.get('dataset', '')})")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("discriminator training step")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Figure 3: learning curve of the discriminator")
    ax.legend(fontsize=8)
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def plot_metric_bars(record: Mapping[str, Any], metric: str, path: Path | None = None):
    """Ours (mean +- std over folds) beside the paper's number for every model of one table."""
    import matplotlib.pyplot as plt

    from ...reference import paper_vs_ours

    df = paper_vs_ours(dict(record))
    df = df[df["metric"] == metric]
    f, ax = plt.subplots(figsize=(max(5, 0.7 * len(df)), 3.5))
    x = np.arange(len(df))
    ax.bar(x - 0.2, df["ours"], 0.4, yerr=df["spread"].fillna(0), label=f"ours ({record['dataset']})", capsize=2)
    paper_ds = next((d for d in df["paper_dataset"] if d), "")
    ax.bar(x + 0.2, df["paper_value"], 0.4, label=f"paper ({paper_ds})")
    ax.set_xticks(x, df["model"], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    if metric == "perplexity":
        ax.set_yscale("log")
    ax.set_title(f"{TABLE_OF[metric]}: {metric}")
    ax.legend(fontsize=8)
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def make_figures(recorder: RunRecorder, cfg: MTConfig) -> dict[str, Any]:
    """Draw Figure 3, the learning curves and the Table 2-4 comparison bars; save them as PNG and
    record their paths (called by :func:`record_results`)."""
    import matplotlib.pyplot as plt

    out_dir = figures_dir(PAPER_KEY, cfg)
    figs = {"Figure 3": plot_figure3(recorder.curves, out_dir / "figure3.png")}
    recorder.add_artifact("Figure 3", out_dir / "figure3.png")
    figs["learning curves"] = learning_curves_figure(recorder.learning_curves, out_dir / "learning_curves.png")
    recorder.add_artifact("learning curves", out_dir / "learning_curves.png")
    record = recorder.as_dict()
    for metric in ("MSE", "perplexity", "tf-idf"):
        path = out_dir / f"{TABLE_OF[metric].lower().replace(' ', '')}.png"
        figs[TABLE_OF[metric]] = plot_metric_bars(record, metric, path)
        recorder.add_artifact(TABLE_OF[metric], path)
    for fig in figs.values():
        plt.close(fig)
    return figs


def describe_models(cfg: MTConfig) -> pd.DataFrame:
    """One row per model of Tables 2-4: the table, what it reads, its registry name's module and whether it runs."""
    rows = [
        ("Table 2", "MT", "ratings + user/item review documents (context-aware MF, Eqs. 10-12)", "xrec_core.models.mt"),
        ("Table 2", "MT-encoder", "MT with the document encoders replaced by an embedding lookup", "xrec_core.models.mt"),
        ("Table 2", "MT-decoder", "MT with the encoders only (no decoder / discriminator)", "xrec_core.models.mt"),
        ("Table 2", "PMF", "ratings", "xrec_core.models.rating_baselines"),
        ("Table 2", "HFT", "ratings + item review bag of words (topics)", "xrec_core.models.hft"),
        ("Table 2", "CTR", "ratings + item review bag of words (topics)", "xrec_core.models.ctr"),
        ("Table 2", "ConvMF+", "ratings + item review documents (CNN, word2vec init)", "xrec_core.models.convmf"),
        ("Table 2", "JMARS", "left out (no faithful implementation possible; see module)", "xrec_core.models.jmars"),
        *[("Table 2", m, "ratings (simple baseline, issue 9)", "xrec_core.models.rating_baselines") for m in SIMPLE_BASELINES],
        ("Tables 3-4", "MT-U / MT-I / MT-P", "decoder conditioned on U~, V~ or both", "xrec_core.models.mt"),
        ("Tables 3-4", "N-gram", "training reviews (interpolated uni/bi/trigram)", "xrec_core.models.ngram_lm"),
        ("Tables 3-4", "Skip-gram", "training reviews (log-linear skip-gram LM)", "xrec_core.models.skipgram_lm"),
        ("Tables 3-4", "LSTM", "training reviews (LSTM LM)", "xrec_core.models.lstm_lm"),
        ("Tables 3-4", "GCN-U / GCN-I / GCN-P", "training reviews + user/item vectors", "xrec_core.models.gcn"),
        ("Table 4", "Opinosis", "the item's training reviews (graph summarizer)", "xrec_core.models.opinosis"),
    ]
    df = pd.DataFrame(rows, columns=["table", "model", "reads", "module"])
    on = set(cfg.rating_baselines) | set(cfg.lm_baselines) | {"MT", "MT-U / MT-I / MT-P", *SIMPLE_BASELINES}
    on |= {"MT-encoder", "MT-decoder"} if cfg.ablations else set()
    on |= {"GCN-U / GCN-I / GCN-P"} if any(m.startswith("GCN") for m in cfg.lm_baselines) else set()
    on |= {"Opinosis"} if cfg.opinosis else set()
    df["run here"] = df["model"].isin(on)
    return df
