"""The five papers of the book: their notebooks, configs and default datasets."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from .config import ConfigError
from .paths import REPO_ROOT


@dataclass(frozen=True)
class Paper:
    key: str
    title: str
    citation: str
    paper_file: str
    notebook: str
    config: str  # "module:Class"
    default_dataset: str

    @property
    def notebook_path(self) -> Path:
        return REPO_ROOT / self.notebook

    def config_class(self):
        module, _, name = self.config.partition(":")
        return getattr(importlib.import_module(module), name)


PAPERS: dict[str, Paper] = {
    p.key: p
    for p in [
        Paper("mt", "Why I like it: multi-task learning for recommendation and explanation",
              "Lu, Dong & Smyth, RecSys 2018", "000_2960526f18daeac3.txt", "notebooks/mt.ipynb",
              "xrec_core.experiments.mt:MTConfig", "amazon2014-instruments"),
        Paper("semax", "SEMAX: semantic meanings and temporal dynamics for recommendation",
              "IEEE Access (extends SEMA)", "001_6506c02af6890998.txt", "notebooks/semax.ipynb",
              "xrec_core.experiments.semax:SemaxConfig", "amazon2014-instruments"),
        Paper("gru", "Ask the GRU: multi-task learning for deep text recommendations",
              "Bansal, Belanger & McCallum, RecSys 2016", "002_3d562a174d4fe034.txt", "notebooks/gru.ipynb",
              "xrec_core.experiments.gru:GRUConfig", "mter-cellphones"),
        Paper("mvae", "Multi-scale distribution deep variational autoencoders for explanation generation",
              "MVAE", "003_841a2cdaa6fcb344.txt", "notebooks/mvae.ipynb",
              "xrec_core.experiments.mvae:MVAEConfig", "amazon2014-instruments"),
        Paper("nar", "Whitebox, graybox and blackbox explainable recommendation: NAR, CAR, CNR",
              "NAR / CAR / CNR", "004_a8107ed5ebc4aeea.txt", "notebooks/nar.ipynb",
              "xrec_core.experiments.nar:NARConfig", "amazon2014-instruments"),
    ]
}


def get_paper(name: str) -> Paper:
    """Look a paper up by key (``mt``) or by its notebook path/file name (``notebooks/mt.ipynb``)."""
    key = Path(name).stem if name.endswith(".ipynb") else name
    if key not in PAPERS:
        raise ConfigError(f"Unknown paper or notebook {name!r}; valid: {', '.join(PAPERS)} (or their notebooks)")
    return PAPERS[key]
