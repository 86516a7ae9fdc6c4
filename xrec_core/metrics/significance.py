"""Is one model better than another over the same folds (splits, seeds)? Paired t-tests.

The papers of this book report means over folds and, where they test at all, paired t-tests at
p < 0.05; a chapter's claim "A beats B" holds here only when the same test agrees.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np


def higher_across_folds(a: Sequence[float], b: Sequence[float], alpha: float = 0.05, unit: str = "fold") -> tuple[bool, str]:
    """Whether ``a`` is higher than ``b`` over the same folds, and the test behind the verdict.

    With two or more folds the answer is yes only when the mean difference is positive **and** a
    paired t-test (``scipy.stats.ttest_rel``, two-sided) gives p < ``alpha``; with one fold there is
    no test and the single values decide (the returned evidence says so). ``unit`` names what the
    values are paired over in that evidence ("fold", "split", "seed").

    Returns
    -------
    (holds, evidence) : (bool, str)
        ``evidence`` is e.g. ``"5 folds, paired t-test p=0.0123"``.
    """
    from scipy.stats import ttest_rel

    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape or a.size == 0:
        raise ValueError(f"need paired values of equal, non-zero length, got {a.size} and {b.size}")
    diff = float(a.mean() - b.mean())
    if a.size < 2:
        return diff > 0, f"1 {unit}, no test"
    if np.array_equal(a, b):
        return False, f"{a.size} {unit}s, identical"
    p = float(ttest_rel(a, b).pvalue)
    return bool(diff > 0 and p < alpha), f"{a.size} {unit}s, paired t-test p={p:.3g}"
