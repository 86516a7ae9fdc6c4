"""Ours vs cornac on identical splits (issue 9). Not part of the test run; needs the cornac extra.

    python benchmarks/compare_cornac.py [--models PMF "Biased MF" HFT NeuMF BPR CTR] [--folds 10]

Writes ``results/parity/parity__full__...json`` (rewritten after every finished unit, so an
interrupted run keeps a valid partial record) and resumes from ``outputs/units/parity``.
"""

from __future__ import annotations

import argparse
import logging

from xrec_core.device import set_threads
from xrec_core.parity import ParityConfig, RANKING_MODELS, RATING_MODELS, run_parity
from xrec_core.paths import REPO_ROOT


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(RATING_MODELS + RANKING_MODELS))
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    set_threads(args.threads)
    cfg = ParityConfig(folds=args.folds, models=tuple(args.models))
    print(run_parity(cfg, REPO_ROOT / "outputs" / "units" / "parity"))


if __name__ == "__main__":
    main()
