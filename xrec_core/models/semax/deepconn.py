"""DeepCoNN (Zheng, Noroozi & Yu, WSDM 2017): two CNN text processors and a factorization machine.

The user network reads the user's reviews, the item network the item's reviews, each as one
concatenated document; an FM on ``[x_u, y_i]`` predicts the rating with a squared loss. As in the
SEMAX comparison (and as TransNets argues), the documents hold only reviews written *before* the
rated review, so the target review is never an input. Word embeddings are learned from scratch
(the original initialises them with pre-trained word2vec vectors, which are not available here).
"""

from __future__ import annotations

import torch
from torch import nn

from ...search_space import Float, Int, LogFloat
from ..registry import RATING, register
from .base import NeuralRatingModel, ReviewBatch
from .inputs import ReviewCorpus
from .layers import FactorizationMachine, TextCNN


class DeepCoNNNet(nn.Module):
    def __init__(self, vocab_size: int, emb_dim: int, n_filters: int, window: int, latent: int, fm_k: int,
                 dropout: float, pad_id: int) -> None:
        super().__init__()
        self.pad_id = pad_id
        self.words = nn.Embedding(vocab_size, emb_dim, padding_idx=pad_id)
        self.user_cnn = TextCNN(emb_dim, n_filters, window, latent, dropout)
        self.item_cnn = TextCNN(emb_dim, n_filters, window, latent, dropout)
        self.fm = FactorizationMachine(2 * latent, fm_k)

    def forward(self, batch: ReviewBatch) -> torch.Tensor:
        user_doc, item_doc = batch.history_docs(self.pad_id)  # (B, M*L) each
        x_u = self.user_cnn(self.words(user_doc), user_doc != self.pad_id)  # (B, n)
        y_i = self.item_cnn(self.words(item_doc), item_doc != self.pad_id)  # (B, n)
        return self.fm(torch.cat([x_u, y_i], dim=-1))  # (B,)


#: what the tuning of DeepCoNN and TransNets explores
CNN_SPACE = {"n_filters": Int(16, 128, log=True), "latent": Int(8, 64, log=True), "dropout": Float(0.0, 0.5),
             "lr": LogFloat(1e-4, 1e-2), "weight_decay": LogFloat(1e-8, 1e-3)}


@register("DeepCoNN", role=RATING, search_space=CNN_SPACE, source="Zheng, Noroozi & Yu, WSDM 2017")
class DeepCoNN(NeuralRatingModel):
    """DeepCoNN on the histories of the user and the item.

    Parameters
    ----------
    emb_dim : int
        Word embedding size (300 word2vec dimensions in the original).
    n_filters : int
        Convolution filters (100 in the original).
    window : int
        Convolution window (3).
    latent : int
        Size of the user and item text representations (50).
    fm_k : int
        Rank of the FM's pairwise interactions.
    dropout : float
    **kwargs
        Training options of :class:`~xrec_core.models.semax.base.NeuralRatingModel`.
    """

    name = "DeepCoNN"

    def __init__(self, *, emb_dim: int, n_filters: int, window: int, latent: int, fm_k: int, dropout: float,
                 **kwargs) -> None:
        super().__init__(**kwargs)
        self.emb_dim, self.n_filters, self.window, self.latent, self.fm_k, self.dropout = emb_dim, n_filters, window, latent, fm_k, dropout

    def _build(self, corpus: ReviewCorpus) -> nn.Module:
        return DeepCoNNNet(corpus.vocab_size, self.emb_dim, self.n_filters, self.window, self.latent, self.fm_k,
                           self.dropout, corpus.pad_id)

    def _loss(self, batch: ReviewBatch, target: torch.Tensor) -> torch.Tensor:
        return ((target - self.net(batch)) ** 2).mean()

    def _predict_batch(self, batch: ReviewBatch) -> torch.Tensor:
        return self.net(batch)
