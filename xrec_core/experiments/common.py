"""What every chapter's protocol shares: where its units and figures go, and how claims are judged.

A chapter package (``xrec_core/experiments/<paper>/``) holds ``config.py`` (its config dataclass),
``data.py``, ``protocol.py`` (units of work through :func:`unit_store`) and ``report.py`` (metric
rows, health checks, learning curves, claims and figures written into the record). This module
gives them one way to do each shared step.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from pathlib import Path
from typing import Any

from ..claims import Verdict, better_than, trend
from ..paths import results_root, units_root
from ..records import Claim, RunRecorder, UnitStore, dataset_slug


def units_dir(paper: str, cfg: Any) -> Path:
    """``<results>/<paper>/units/<scale>__<dataset>`` (committed with full runs)."""
    return units_root(cfg.results_dir or None, paper, cfg.scale, dataset_slug(cfg.dataset))


def figures_dir(paper: str, cfg: Any) -> Path:
    """``<results>/<paper>/figures/<scale>__<dataset>``, created, beside the record."""
    path = results_root(cfg.results_dir or None) / paper / "figures" / f"{cfg.scale}__{dataset_slug(cfg.dataset)}"
    path.mkdir(parents=True, exist_ok=True)
    return path


def unit_store(paper: str, cfg: Any, root: str | Path | None = None) -> UnitStore:
    """The resumable unit store of one run of chapter ``paper`` (its fingerprint covers the config and
    the code the chapter runs, see :func:`~xrec_core.records.scoped_code_hash`)."""
    return UnitStore(root or units_dir(paper, cfg), cfg, code_scope=f"experiments.{paper}")


class ClaimJudge:
    """Decides a chapter's claims on one record, with the record's health checks in force.

    Add the health checks to the recorder first: a claim that names a model that failed one is
    *untestable*. Each method records the claim and returns its :class:`~xrec_core.claims.Verdict`.

    Parameters
    ----------
    recorder : RunRecorder
    unit : str
        What the per-unit values are paired over ("fold", "split", "seed").
    alpha : float
        Test level.
    """

    def __init__(self, recorder: RunRecorder, *, unit: str, alpha: float = 0.05) -> None:
        self.recorder, self.unit, self.alpha = recorder, unit, alpha

    def better(self, claim: str, source: str, values: dict[str, Sequence[float] | None], winner: str,
               losers: Sequence[str] | str, *, higher_is_better: bool, dataset: str | None = None) -> Verdict:
        """"``winner`` beats ``losers``" (every one of them), by paired t-tests over the units."""
        losers = [losers] if isinstance(losers, str) else list(losers)
        verdict = better_than(values, winner, losers, higher_is_better=higher_is_better, alpha=self.alpha,
                              unit=self.unit, unhealthy=self.recorder.unhealthy())
        self.recorder.add_claim(Claim.decided(claim, source, verdict, dataset=dataset or self.recorder.dataset,
                                              models=[winner, *losers]))
        return verdict

    def trend(self, claim: str, source: str, settings: Sequence[float], values_per_unit: Sequence[Sequence[float]], *,
              increasing: bool, models: Sequence[str], present: Collection[str] | None = None, log_x: bool = False,
              dataset: str | None = None) -> Verdict:
        """"The metric rises (falls) with the setting", by a t-test of the per-unit slopes."""
        verdict = trend(settings, values_per_unit, increasing=increasing, alpha=self.alpha, unit=self.unit, log_x=log_x,
                        models=models, present=present, unhealthy=self.recorder.unhealthy())
        self.recorder.add_claim(Claim.decided(claim, source, verdict, dataset=dataset or self.recorder.dataset,
                                              models=list(models)))
        return verdict
