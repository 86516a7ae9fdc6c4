"""The MT model of "Why I like it" (Lu, Dong & Smyth, RecSys 2018): context-aware MF + adversarial seq2seq."""

from .camf import ContextAwareMF, als_update
from .discriminator import ReviewDiscriminator
from .reinforce import batch_baseline, monte_carlo_rewards, reinforce_loss
from .seq2seq import DocumentEncoder, EntityEncoder, ReviewDecoder, sequence_log_probs, word2vec_matrix
from .trainer import MultiTaskModel, ReviewSplit, ReviewTensors

__all__ = ["ContextAwareMF", "als_update", "ReviewDiscriminator", "batch_baseline", "monte_carlo_rewards",
           "reinforce_loss", "DocumentEncoder", "EntityEncoder", "ReviewDecoder", "sequence_log_probs",
           "word2vec_matrix", "MultiTaskModel", "ReviewSplit", "ReviewTensors"]
