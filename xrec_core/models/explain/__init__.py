"""Explanation-generation baselines of the MVAE chapter: NRT, Att2Seq, NETE, PETER and a retrieval baseline."""

from .att2seq import Att2Seq
from .common import ExplanationBatch, ExplanationGenerator, TextSpec
from .nete import NETE
from .nrt import NRT
from .peter import PETER
from .retrieval import ItemMedoidRetrieval

__all__ = ["Att2Seq", "ExplanationBatch", "ExplanationGenerator", "TextSpec", "NETE", "NRT", "PETER", "ItemMedoidRetrieval"]
