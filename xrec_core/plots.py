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
