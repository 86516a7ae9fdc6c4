"""What the review loaders' removal of copied reviews leaves of an Amazon file: the datasets page's table.

The Amazon 2018 5-core files list one review once per variant of a product; the loaders keep one copy
(:func:`xrec_core.data.stream.drop_review_copies`). What remains is no longer a 5-core: a user whose five
reviews were one review under five variants is left with one. This module measures, from the files
themselves, how many rows were copies and what a k-core of the kept reviews would still hold, so the book
says how much data a chapter's stand-in really has. No chapter imports it (it is not part of any
chapter's code fingerprint).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import pandas as pd

from . import load_reviews, stats
from .sources import resolve
from .stream import amazon_batches


def rows_in_file(name: str, data_dir: str | os.PathLike | None = None) -> int:
    """Reviews listed in the Amazon JSON-lines file of ``name``, copies included."""
    source = resolve(name, data_dir)
    if source.kind != "amazon":
        raise ValueError(f"{source.name} is a {source.kind} dataset; only Amazon review files list copies")
    return sum(batch.num_rows for batch, _ in amazon_batches(source.files[0]))


def review_copies_table(names: Sequence[str], data_dir: str | os.PathLike | None = None,
                        k_core: int = 5) -> pd.DataFrame:
    """One row per Amazon dataset: rows in the file, reviews kept, users, items, reviews per user, and
    the reviews, users and items a ``k_core`` of the kept reviews would leave.

    Parameters
    ----------
    names : sequence of str
        Amazon dataset names (registry or derived names, or paths to Amazon JSON-lines files).
    data_dir : path, optional
        The data folder (default: ``XREC_DATA``).
    k_core : int
        The core to report (5: what the files were published as).
    """
    rows = []
    for name in names:
        kept = load_reviews(name, data_dir, progress=False)
        core = stats.k_core(kept, k_core)
        in_file = rows_in_file(name, data_dir)
        rows.append({
            "dataset": name, "rows in file": in_file, "reviews kept": len(kept),
            "copies dropped (%)": round(100 * (in_file - len(kept)) / in_file, 1) if in_file else 0.0,
            "users": kept["user"].nunique(), "items": kept["item"].nunique(),
            "reviews per user": round(len(kept) / max(kept["user"].nunique(), 1), 2),
            f"{k_core}-core: reviews": len(core), f"{k_core}-core: users": core["user"].nunique(),
            f"{k_core}-core: items": core["item"].nunique(),
        })
    return pd.DataFrame(rows)
