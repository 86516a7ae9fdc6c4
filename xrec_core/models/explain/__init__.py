"""Explanation-generation baselines of the MVAE chapter: NRT, Att2Seq, NETE, PETER and two retrieval baselines.

Importing this package registers them (:mod:`xrec_core.models.registry`) under the names of the
MVAE paper's Table 2 (and ``"Retrieval (item medoid)"``, ``"Retrieval (user medoid)"`` for the retrieval baselines).
"""

from .att2seq import Att2Seq
from .common import ExplanationBatch, ExplanationGenerator, TextSpec, TrainingSettings
from .nete import NETE
from .nrt import NRT
from .peter import PETER
from .retrieval import RETRIEVAL, RETRIEVALS, USER_RETRIEVAL, MedoidRetrieval

__all__ = ["Att2Seq", "ExplanationBatch", "ExplanationGenerator", "TextSpec", "TrainingSettings", "NETE", "NRT", "PETER",
           "RETRIEVAL", "RETRIEVALS", "USER_RETRIEVAL", "MedoidRetrieval"]
