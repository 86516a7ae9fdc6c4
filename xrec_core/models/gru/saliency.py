"""Word saliency of Sec. 4.3 (after Denil et al. and Li et al.): ``||d r_ij / d e_{j,t}||`` by backpropagation."""

from __future__ import annotations

import numpy as np
import torch

from .net import TextRecNet


def word_saliency(net: TextRecNet, user: int, item: int, tokens: np.ndarray,
                  device: torch.device | str = "cpu") -> np.ndarray:
    """Euclidean norm of the gradient of ``r_ij`` with respect to each word embedding of ``tokens``.

    The network is put in eval mode (no dropout), the embeddings of the ``T`` tokens are looked
    up, made a leaf tensor, and ``r_ij`` is backpropagated to them; returns a ``(T,)`` array.
    """
    if len(tokens) == 0:
        return np.zeros(0)
    net.eval()
    tok = torch.as_tensor(np.asarray(tokens, dtype=np.int64), device=device).unsqueeze(0)  # (1, T)
    emb = net.encoder.embed(tok).detach().requires_grad_(True)  # (1, T, K_w)
    mask = torch.ones_like(tok, dtype=torch.bool)
    r = net.rating_from_embeddings(torch.tensor([user], device=device), torch.tensor([item], device=device), emb, mask)
    (grad,) = torch.autograd.grad(r.sum(), emb)
    return grad[0].norm(dim=-1).cpu().numpy()  # (T,)
