"""Ask the GRU (Bansal, Belanger & McCallum, RecSys 2016): text encoders, scoring, MTL, training, saliency."""

from .encoders import EmbedEncoder, GRUEncoder
from .losses import confidence_weights, rating_loss, tag_loss
from .model import TextRecommender, Validation, pad_tokens
from .net import TextRecNet, build_encoder
from .pretrain import pretrain_cbow
from .ranking import reciprocal_hit_rank, topk_from_factors
from .saliency import word_saliency

__all__ = [
    "EmbedEncoder", "GRUEncoder", "TextRecNet", "build_encoder", "TextRecommender", "Validation", "pad_tokens",
    "confidence_weights", "rating_loss", "tag_loss", "pretrain_cbow", "reciprocal_hit_rank",
    "topk_from_factors", "word_saliency",
]
