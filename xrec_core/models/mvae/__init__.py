"""MVAE (paper 003): model, Blocks, TKL schedule and the plain VAE of Fig. 4."""

from .blocks import Block, SNLinear, gaussian_kl
from .model import MVAE, VARIANTS, tkl, tkl_beta
from .vae import PlainVAE

__all__ = ["Block", "SNLinear", "gaussian_kl", "MVAE", "VARIANTS", "tkl", "tkl_beta", "PlainVAE"]
