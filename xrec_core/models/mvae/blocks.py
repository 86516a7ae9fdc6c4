"""The representation transformation module ``Block`` of MVAE (Eq. 1) and diagonal-Gaussian KL."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm


class SNLinear(nn.Module):
    """``f_{dx,dy}(x) = SN(W GELU(x) + b)`` of Eq. 1: a spectrally normalised linear map of GELU(x)."""

    def __init__(self, d_in: int, d_out: int) -> None:
        super().__init__()
        self.linear = spectral_norm(nn.Linear(d_in, d_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(F.gelu(x))


class Block(nn.Module):
    """Eq. 1: ``x' = LayerNorm(T(x) + x)``, ``y = f_{d1,d_out}(x')`` with
    ``T = f_{d2,d1} o f_{d2,d2} o f_{d1,d2} o f_{d1,d1}``.

    The residual needs ``T``'s output size to equal the input size ``d1 = d_in``; the paper leaves
    the inner size ``d2`` open, we use ``d2 = d_hidden`` (default: ``d_out``, i.e. the compressed size).

    Parameters
    ----------
    d_in, d_out : int
        Input and output sizes (a Block that outputs several variables, e.g. ``mu, sigma, C'`` of
        Eq. 3, has ``d_out`` = their total size and its output is split into equal parts).
    """

    def __init__(self, d_in: int, d_out: int, d_hidden: int | None = None, dropout: float = 0.0) -> None:
        super().__init__()
        d2 = d_hidden or d_out
        self.transform = nn.Sequential(SNLinear(d_in, d_in), SNLinear(d_in, d2), SNLinear(d2, d2), SNLinear(d2, d_in))
        self.norm = nn.LayerNorm(d_in)
        self.dropout = nn.Dropout(dropout)
        self.out = SNLinear(d_in, d_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, d_in) -> (B, d_out)
        x = self.norm(self.dropout(self.transform(x)) + x)
        return self.out(x)


def gaussian_kl(mu1: torch.Tensor, logvar1: torch.Tensor, mu2: torch.Tensor | None = None,
                logvar2: torch.Tensor | None = None) -> torch.Tensor:
    """``KL(N(mu1, diag e^logvar1) || N(mu2, diag e^logvar2))`` summed over the last dim; ``(B,)``.

    ``mu2 = logvar2 = None`` means the standard normal ``N(0, I)``.
    """
    if mu2 is None:
        mu2 = torch.zeros_like(mu1)
        logvar2 = torch.zeros_like(logvar1)
    kl = 0.5 * (logvar2 - logvar1 + (logvar1.exp() + (mu1 - mu2) ** 2) / logvar2.exp() - 1.0)
    return kl.sum(-1)
