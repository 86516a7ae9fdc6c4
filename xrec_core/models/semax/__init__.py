"""Models of the SEMAX chapter (paper 001): SEMA, SEMAX and the review-based baselines.

NCF (NeuMF) comes from :mod:`xrec_core.models.ncf`; the simple rating baselines from
:mod:`xrec_core.models.rating_baselines`. Importing this package registers SEMA, SEMAX, DeepCoNN,
TransNets and TransNets-Ext in :mod:`xrec_core.models.registry`.

Two CNN text encoders exist in the package and both are needed: :class:`.layers.TextCNN` here is
DeepCoNN's (one window size, max-pool over time that skips padding positions inside the
concatenated history documents, one FC layer to the latent size, inputs already embedded so that
the user and item networks share one embedding table), while :class:`xrec_core.models.convmf.TextCNN`
is Kim's ConvMF encoder (windows 3/4/5, its own embedding, a 200-unit hidden layer, no masking:
ConvMF's item documents are single padded texts).
"""

from .base import NeuralRatingModel, ReviewBatch
from .deepconn import DeepCoNN
from .inputs import ReviewCorpus, ReviewSet, build_histories
from .sema import SEMA, SEMAX
from .transnets import TransNets, TransNetsExt

__all__ = ["NeuralRatingModel", "ReviewBatch", "ReviewCorpus", "ReviewSet", "build_histories", "SEMA", "SEMAX", "DeepCoNN",
           "TransNets", "TransNetsExt"]
