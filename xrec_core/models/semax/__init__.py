"""Models of the SEMAX chapter (paper 001): SEMA, SEMAX and the review-based baselines.

NCF (NeuMF) comes from :mod:`xrec_core.models.ncf`; the simple rating baselines from
:mod:`xrec_core.models.rating_baselines`.
"""

from .base import NeuralRatingModel, ReviewBatch
from .deepconn import DeepCoNN
from .inputs import ReviewCorpus, build_histories
from .sema import SEMA, SEMAX
from .transnets import TransNets, TransNetsExt

__all__ = ["NeuralRatingModel", "ReviewBatch", "ReviewCorpus", "build_histories", "SEMA", "SEMAX", "DeepCoNN",
           "TransNets", "TransNetsExt"]
