"""MVAE (paper 003): model, Blocks, TKL schedule and the plain VAE of Fig. 4.

Importing this package registers ``MVAE``, ``MVAE-NoKL``, ``MVAE-NoMLF`` and ``MVAE-NoRN``
(:mod:`xrec_core.models.registry`).
"""

from .blocks import Block, SNLinear, gaussian_kl
from .model import MVAE, VARIANT_NAMES, VARIANTS, tkl, tkl_beta
from .vae import PlainVAE

__all__ = ["Block", "SNLinear", "gaussian_kl", "MVAE", "VARIANT_NAMES", "VARIANTS", "tkl", "tkl_beta", "PlainVAE"]
