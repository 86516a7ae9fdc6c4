"""Ask the GRU (Bansal, Belanger & McCallum, RecSys 2016): text encoders, scoring, MTL, training, saliency.

Importing this package registers GRU, GRU-MTL, Embed, Embed-MTL and CTR-MTL
(:mod:`xrec_core.models.registry`).
"""

from .ctr_mtl import ctr_mtl
from .encoders import EmbedEncoder, GRUEncoder
from .losses import confidence_weights, rating_loss, tag_loss
from .model import TextRecData, TextRecommender, Validation, pad_tokens
from .net import TextRecNet, build_encoder
from .pretrain import pretrain_cbow
from .ranking import reciprocal_hit_rank, topk_from_factors
from .saliency import word_saliency

__all__ = [
    "EmbedEncoder", "GRUEncoder", "TextRecNet", "build_encoder", "TextRecData", "TextRecommender", "Validation",
    "pad_tokens", "confidence_weights", "rating_loss", "tag_loss", "pretrain_cbow", "reciprocal_hit_rank",
    "topk_from_factors", "word_saliency", "ctr_mtl",
]
