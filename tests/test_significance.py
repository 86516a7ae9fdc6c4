"""Paired significance tests behind the chapters' claims."""

from __future__ import annotations

import numpy as np
import pytest


def test_claims_need_a_significant_paired_difference_across_folds():
    from scipy.stats import ttest_rel

    from xrec_core.metrics.significance import higher_across_folds

    a, b = [0.30, 0.31, 0.29, 0.32, 0.30], [0.20, 0.22, 0.19, 0.21, 0.20]
    holds, why = higher_across_folds(a, b)
    assert holds and f"p={ttest_rel(a, b).pvalue:.3g}" in why
    # a higher mean that the folds do not support is not a win
    noisy = [0.30, 0.10, 0.45, 0.05, 0.40]
    assert np.mean(noisy) > np.mean(b) + 0.01 and ttest_rel(noisy, [x + 0.01 for x in b]).pvalue > 0.05
    assert higher_across_folds(noisy, [x + 0.01 for x in b])[0] is False
    assert higher_across_folds(b, a)[0] is False
    assert higher_across_folds([0.3], [0.2]) == (True, "1 fold, no test")
    assert higher_across_folds(a, a)[0] is False
    with pytest.raises(ValueError, match="paired"):
        higher_across_folds(a, b[:3])
