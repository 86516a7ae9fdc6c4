"""Shared figure helpers: every figure is shown in the notebook and saved as a PNG file."""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

if not os.environ.get("DISPLAY") and "MPLBACKEND" not in os.environ:
    matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import seaborn as sns  # noqa: E402

VERDICT_COLORS = {
    "reproduced": "#2a9d8f",
    "partly": "#e9c46a",
    "not reproduced": "#e76f51",
    "not testable here": "#8d99ae",
    "no paper number": "#adb5bd",
    "smoke scale (not a reproduction)": "#ced4da",
    "not run": "#f1f3f5",
}


def show_figure(fig: "matplotlib.figure.Figure", dpi: int = 110) -> None:
    """Display ``fig`` as an embedded PNG and close it.

    Unlike ``plt.show()``, this does not depend on the active matplotlib backend (under papermill
    and in CI the backend may be ``Agg``, which displays nothing), so the executed notebook, and
    the site built from it, always carries the image.
    """
    import io

    from IPython.display import Image, display

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi, bbox_inches="tight")
    plt.close(fig)
    display(Image(data=buffer.getvalue(), format="png"))


def save_figure(fig: "matplotlib.figure.Figure", path: str | os.PathLike, dpi: int = 130) -> Path:
    """Save ``fig`` as PNG (creating folders) and return the path; the figure stays open for display."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi, bbox_inches="tight")
    return path


def scorecard_figure(card: pd.DataFrame, path: str | os.PathLike) -> Path:
    """Stacked bars: how many published numbers per paper fall under each verdict."""
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    if card.empty:
        ax.text(0.5, 0.5, "no run records yet", ha="center", va="center")
        ax.set_axis_off()
    else:
        counts = card.pivot_table(index="paper", columns="verdict", values="metric", aggfunc="count", fill_value=0)
        counts = counts[[v for v in VERDICT_COLORS if v in counts.columns]]
        counts.plot.barh(stacked=True, ax=ax, color=[VERDICT_COLORS[c] for c in counts.columns], edgecolor="#495057", linewidth=0.4)
        ax.set_xlabel("published numbers")
        ax.set_ylabel("")
        ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False, fontsize=8)
        sns.despine(ax=ax)
    out = save_figure(fig, path)
    plt.close(fig)
    return out


def learning_curves_figure(curves: dict[str, dict[str, dict]], path: str | os.PathLike | None = None,
                           max_cols: int = 4) -> "matplotlib.figure.Figure":
    """Small multiples of a record's ``learning_curves``: one panel per model.

    Each panel draws the training loss of every unit (fold, split, seed) on the left axis and the
    validation metric on the right axis, and marks each unit's kept (best) epoch with a dot; a
    curve that hit its epoch cap instead of stopping by patience is drawn dashed.
    """
    import math

    names = list(curves)
    cols = max(1, min(max_cols, len(names)))
    rows = max(1, math.ceil(len(names) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(3.3 * cols, 2.6 * rows), squeeze=False)
    for ax, name in zip(axes.flat, names):
        right = ax.twinx()
        for unit, c in curves[name].items():
            style = "-" if c.get("stopped_early", True) else "--"
            epochs = list(range(1, len(c["train_loss"]) + 1))
            ax.plot(epochs, c["train_loss"], style, color="#457b9d", lw=1, alpha=0.8)
            v_epochs = c.get("valid_epochs") or list(range(1, len(c["valid"]) + 1))
            right.plot(v_epochs, c["valid"], style, color="#e76f51", lw=1, alpha=0.8)
            if c.get("best_epoch") and c["best_epoch"] in v_epochs:
                right.plot([c["best_epoch"]], [c["valid"][v_epochs.index(c["best_epoch"])]], "o", color="#e76f51", ms=4)
        first = next(iter(curves[name].values()), {})
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_ylabel("train loss", color="#457b9d", fontsize=8)
        right.set_ylabel(first.get("valid_metric", "validation"), color="#e76f51", fontsize=8)
        ax.tick_params(labelsize=7)
        right.tick_params(labelsize=7)
    for ax in list(axes.flat)[len(names):]:
        ax.set_axis_off()
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path)
    return fig
