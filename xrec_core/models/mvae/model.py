"""MVAE: Multi-Scale Distribution Deep Variational Autoencoders for explanation generation.

Recognition network (Eqs. 2-3), prior network (Eq. 4), multi-scale learning framework with
target-tracking KL (MLF/TKL, Eqs. 6-7, beta annealing of Eq. 11), reconstruction network
(Eq. 8) feeding a GPT-style Transformer decoder trained by NLL (Eq. 9); objective Eq. 10.

Variants (``variant=``), registered under the paper's table names:

* ``"mvae"`` -- the full model (``MVAE``).
* ``"nokl"`` -- ``MVAE-NoKL``, as Sec. 4.8 defines it (and Sec. 4.7 describes it: "lower training
  losses but higher testing losses"): the reconstruction network receives the posterior mean
  ``mu_r`` (no sampling noise) and TKL is replaced by the mean squared error between ``mu_r`` and
  ``mu_p`` (mean over the latent dimensions of a scale, summed over scales as Eq. 7 sums TKL).
  Sec. 4.3 describes NoKL only as "the second KL term of TKL removed"; with the paper's
  ``beta = 0.001`` (annealed by Eq. 11) that term is a few hundredths of a nat per sentence, and a
  model without it matched MVAE on every metric to the last digit in our runs (an ablation that
  removes nothing), so the chapter uses the Sec. 4.8 definition for Table 3 and Fig. 6 alike.
* ``"nomlf"`` -- ``MVAE-NoMLF``: only the smallest-scale distribution is kept (the other
  BlockRs/BlockPs only compress, and the reconstruction network adds a latent at the smallest scale only).
* ``"norn"`` -- ``MVAE-NoRN`` of Sec. 4.8/Fig. 6: trained with the test-phase architecture (Fig. 2b):
  no recognition network, ``z_j = mu_p`` and no KL term.

Choices where the paper is silent or ambiguous (stated in the chapter too):

* ``sigma`` of Eqs. 3-4 is parameterised as a log-variance.
* Eq. 6 writes the beta term as ``KL(q_theta(z|x) || N(0, I))`` while the text says
  ``KL(N(0, I) || q_theta)``; we follow Eq. 6.
* The recognition encoder reads the explanation words and ``<EOS>`` (no ``<BOS>``), after the two
  summary tokens ``C1, C2``; decoder inputs are ``[T1, T2, <BOS>, w_1 .. w_n]`` with a causal mask.
* The user/item/rating embeddings each have size ``2 d_model / 3`` so that ``[E_u, E_i, E_r]`` has
  the size of ``[O_1, O_2]`` (1,536 = 3 x 512 in the paper); the rating enters as the binary
  sentiment (rating >= 3, Sec. 4.4). The output layer is tied to the shared word embeddings.
* Losses are summed over tokens and latent dimensions per sentence (Eqs. 9-10) and averaged
  over the batch.
* Inputs of the encoder and decoder Transformers are handled as in PETER's code: word vectors
  (and the summary tokens) start at uniform(-0.1, 0.1) and are scaled by ``sqrt(d)``, fixed
  sinusoidal positions are added and dropout (the paper's 0.3) is applied to the sum. An earlier version added learned positions left at their
  N(0, 1) start to N(0, 0.02) word vectors (50x smaller), so the decoder saw mostly positions at
  the start of training, as our PETER did before the same fix.
* Training computes the vocabulary projection only at positions whose target is a word
  (:func:`~xrec_core.models.explain.common.projected_token_nll`), the same sums as projecting every
  position and masking the padding.

On the chapter's Musical Instruments split (``full`` preset) MVAE's decoder prefix becomes the same
vector for every user and item within the first epoch (posterior collapse on the recognition side,
after which the target-tracking KL holds the prior means at one point) and the decoder ignores it.
Without the recognition network (NoRN) the prefix shrinks early too but recovers. The chapter's
"Did every model learn?" section renders the numbers from the ``diag_mvae`` record.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from ...search_space import Categorical, Float, LogFloat
from ..explain.common import (ExplanationBatch, ExplanationGenerator, SinusoidalPositions, TextSpec, TrainingSettings,
                              causal_mask, projected_token_nll)
from ..registry import GENERATION, register
from .blocks import Block, gaussian_kl

VARIANTS = ("mvae", "nokl", "nomlf", "norn")
#: the registry names of the variants (the paper's Table 2/3 and Fig. 6 names)
VARIANT_NAMES = {"MVAE": "mvae", "MVAE-NoKL": "nokl", "MVAE-NoMLF": "nomlf", "MVAE-NoRN": "norn"}
#: what every MVAE variant's tuning study explores; d_model keeps 2*d_model divisible by 3 and 2**(n_rd+n_rs)
SEARCH_SPACE = {"lr": LogFloat(1e-4, 1e-2), "dropout": Float(0.0, 0.5), "d_model": Categorical((48, 96, 192)),
                "beta": LogFloat(1e-4, 1e-1)}
WORD_INIT_RANGE = 0.1


def tkl_beta(step: int, beta: float = 1e-3, k: float = 0.0025, a0: float = 0.0) -> float:
    """Eq. 11: ``beta' = beta / (1 + exp(-k (n_step - a0)))``."""
    z = -k * (step - a0)
    if z > 700:  # exp overflow: beta' underflows to 0
        return 0.0
    return beta / (1.0 + math.exp(z))


def tkl(mu_r: torch.Tensor, logvar_r: torch.Tensor, mu_p: torch.Tensor, logvar_p: torch.Tensor,
        beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Eq. 6 for one scale: ``KL(q_theta || q_phi) + beta KL(q_theta || N(0, I))``.

    Returns ``(tkl, kl_prior, kl_std)``, each ``(B,)``.
    """
    kl_prior = gaussian_kl(mu_r, logvar_r, mu_p, logvar_p)
    kl_std = gaussian_kl(mu_r, logvar_r)
    return kl_prior + beta * kl_std, kl_prior, kl_std


def summary_outputs(encoder: nn.TransformerEncoder, x: torch.Tensor, pad: torch.Tensor, n_summary: int) -> torch.Tensor:
    """``encoder(x, src_key_padding_mask=pad)[:, :n_summary]``, computed without the rest of the last layer.

    The recognition network reads only the outputs at the summary tokens ``C1, C2`` (Eq. 2). In a
    post-norm layer a position's output depends on its own query and on every key and value, so the
    last layer needs keys and values of all positions but queries, attention output, norms and
    feed-forward only at those ``n_summary`` positions: about four fifths of that layer's work is
    skipped (a quarter of the Transformer work of a training step) and the model is unchanged.
    ``x``: (B, S, d); ``pad``: (B, S) True at padding; returns (B, n_summary, d).
    """
    *first, last = encoder.layers
    if last.norm_first or encoder.norm is not None:
        raise ValueError("summary_outputs expects post-norm layers without a final norm, as MVAE builds them")
    for layer in first:
        x = layer(x, src_key_padding_mask=pad)  # (B, S, d)
    query = x[:, :n_summary]  # (B, n, d)
    attended = last.self_attn(query, x, x, key_padding_mask=pad, need_weights=False)[0]
    h = last.norm1(query + last.dropout1(attended))
    return last.norm2(h + last.dropout2(last.linear2(last.dropout(last.activation(last.linear1(h))))))


class _Compressor(nn.Module):
    """``n_d`` compression Blocks then ``n_s`` Blocks emitting ``(mu, logvar, C')`` (Eqs. 3-4).

    Sizes halve at every Block (compression ratio 0.5, Sec. 4.4). ``with_dist[j]`` says whether the
    j-th distribution Block emits a distribution (all do, except under NoMLF).
    """

    def __init__(self, d_in: int, n_d: int, n_s: int, with_dist: list[bool], dropout: float) -> None:
        super().__init__()
        dims = [d_in // 2 ** k for k in range(n_d + n_s + 1)]
        self.compress = nn.ModuleList(Block(dims[k], dims[k + 1], dropout=dropout) for k in range(n_d))
        self.with_dist = with_dist
        self.dist = nn.ModuleList(
            Block(dims[n_d + j], (3 if with_dist[j] else 1) * dims[n_d + j + 1], d_hidden=dims[n_d + j + 1], dropout=dropout)
            for j in range(n_s))
        self.dims = dims

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, list[tuple[torch.Tensor, torch.Tensor] | None]]:
        for block in self.compress:
            x = block(x)
        dists = []
        for block, has in zip(self.dist, self.with_dist):
            out = block(x)
            if has:
                mu, logvar, x = out.chunk(3, -1)  # each (B, d_j)
                dists.append((mu, logvar))
            else:
                x = out
                dists.append(None)
        return x, dists  # (B, d_last), one entry per scale, largest first


class MVAE(ExplanationGenerator):
    """MVAE explanation generator (see module docstring).

    Parameters (paper defaults, Sec. 4.4)
    ----------
    n_users, n_items : int
    spec : TextSpec
    d_model : int
        Transformer hidden size ``d_v`` (768).
    n_layers : int
        Layers of the Transformer encoder and of the decoder (2 each).
    n_heads : int
        Attention heads (not given in the paper; 12 as in GPT-2 small for 768).
    n_rd, n_rs : int
        Compression and distribution Blocks of the recognition and prior networks
        (``n_pd = n_rd = 4``, ``n_ps = n_rs = 3``); the reconstruction network has ``n_rs + n_rd`` Blocks.
    beta, anneal_k, anneal_a0 : float
        TKL weight and Eq. 11 annealing (0.001, 0.0025, a0 = half the steps NoKL needs to converge).
    dropout : float
        0.3 in the Transformer encoder and decoder.
    max_len : int
        Longest sequence the positional embeddings cover.
    block_dropout : float
        Dropout inside the Blocks (the paper names none: 0).
    variant : {"mvae", "nokl", "nomlf", "norn"}
    training : TrainingSettings
    """

    def __init__(self, n_users: int, n_items: int, spec: TextSpec, *, d_model: int, n_layers: int, n_heads: int, n_rd: int,
                 n_rs: int, beta: float, anneal_k: float, anneal_a0: float, dropout: float, block_dropout: float, max_len: int,
                 variant: str, training: TrainingSettings) -> None:
        super().__init__(spec, training)
        if variant not in VARIANTS:
            raise ValueError(f"Unknown MVAE variant {variant!r}; valid: {', '.join(VARIANTS)}")
        d_in = 2 * d_model
        if d_in % 3 or d_in % 2 ** (n_rd + n_rs):
            raise ValueError(f"2*d_model={d_in} must be divisible by 3 and by 2**(n_rd+n_rs)={2 ** (n_rd + n_rs)}")
        self.variant, self.d_model, self.scale = variant, d_model, math.sqrt(d_model)
        self.beta, self.anneal_k, self.anneal_a0 = beta, anneal_k, anneal_a0
        self.beta_now = tkl_beta(0, beta, anneal_k, anneal_a0)
        self.n_rs = n_rs
        with_dist = [variant != "nomlf" or j == n_rs - 1 for j in range(n_rs)]
        self.with_dist = with_dist

        # shared word embeddings (Sec. 4.4) and the input embeddings of the prior network
        self.word_emb = nn.Embedding(spec.vocab_size, d_model)
        nn.init.uniform_(self.word_emb.weight, -WORD_INIT_RANGE, WORD_INIT_RANGE)  # PETER's init; the output layer is tied to it
        e = d_in // 3
        self.user_emb, self.item_emb, self.rating_emb = nn.Embedding(n_users, e), nn.Embedding(n_items, e), nn.Embedding(2, e)

        # recognition network (Eqs. 2-3); NoRN has none
        if variant != "norn":
            self.summary = nn.Parameter(torch.empty(2, d_model).uniform_(-WORD_INIT_RANGE, WORD_INIT_RANGE))  # C1, C2
            layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout, activation="gelu", batch_first=True)
            self.encoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
            self.recognition = _Compressor(d_in, n_rd, n_rs, with_dist, block_dropout)
        # prior network (Eq. 4)
        self.prior = _Compressor(d_in, n_rd, n_rs, with_dist, block_dropout)
        dims = self.prior.dims  # d_in, d_in/2, ..., smallest
        # reconstruction network (Eq. 8): n_rs Blocks adding z (smallest scale first), then n_rd Blocks
        rev = dims[::-1]
        self.reconstruct = nn.ModuleList(Block(rev[k], rev[k + 1], dropout=block_dropout) for k in range(n_rd + n_rs))
        # GPT-style decoder over [T1, T2, <BOS>, w_1 .. w_n]
        self.pos = SinusoidalPositions(d_model, max_len + 3)
        self.input_dropout = nn.Dropout(dropout)  # on the input sum of both Transformers, as in PETER's code
        layer = nn.TransformerEncoderLayer(d_model, n_heads, 4 * d_model, dropout, activation="gelu", batch_first=True)
        self.decoder = nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)
        self.dec_norm = nn.LayerNorm(d_model)
        self.out_bias = nn.Parameter(torch.zeros(spec.vocab_size))

    # ------------------------------------------------------------------ networks
    def on_step(self, step: int) -> None:
        self.beta_now = tkl_beta(step, self.beta, self.anneal_k, self.anneal_a0)

    def prior_net(self, batch: ExplanationBatch) -> tuple[torch.Tensor, list]:
        e0 = torch.cat([self.user_emb(batch.user), self.item_emb(batch.item), self.rating_emb(batch.sentiment)], -1)  # (B, 2d)
        return self.prior(e0)

    def recognition_net(self, batch: ExplanationBatch) -> list:
        words = batch.seq[:, 1:]  # (B, T-1): w_1 .. w_n, <EOS>, pads
        b, t = words.shape
        x = torch.cat([self.summary.expand(b, 2, -1), self.word_emb(words)], 1) * self.scale  # (B, T+1, d)
        x = self.input_dropout(x + self.pos(t + 2))
        pad = torch.cat([torch.zeros(b, 2, dtype=torch.bool, device=x.device), words == self.spec.pad_id], 1)
        o = summary_outputs(self.encoder, x, pad, 2)  # (B, 2, d): O_1, O_2
        _, dists = self.recognition(torch.cat([o[:, 0], o[:, 1]], -1))  # C'_0 = [O_1, O_2]: (B, 2d)
        return dists

    def reconstruction(self, h: torch.Tensor, zs: list[torch.Tensor | None]) -> torch.Tensor:
        """Eq. 8: ``zs`` largest scale first; returns ``T = [T1, T2]`` as ``(B, 2, d)``."""
        for j, block in enumerate(self.reconstruct):
            if j < self.n_rs:
                z = zs[self.n_rs - 1 - j]  # smallest scale first
                if z is not None:
                    h = h + z
            h = block(h)
        return torch.stack(h.chunk(2, -1), 1)

    def decode_hidden(self, prefix: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Decoder over ``[T1, T2] + tokens``; its normalised hidden states ``(B, L, d)`` at the token positions."""
        x = torch.cat([prefix, self.word_emb(tokens) * self.scale], 1)  # (B, 2+L, d)
        n = x.shape[1]
        x = self.input_dropout(x + self.pos(n))
        return self.dec_norm(self.decoder(x, mask=causal_mask(n, x.device)))[:, 2:]

    def decode_logits(self, prefix: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, L, V)`` at the token positions; the output layer is tied to the word embeddings."""
        return F.linear(self.decode_hidden(prefix, tokens), self.word_emb.weight, self.out_bias)

    # ------------------------------------------------------------------ objective
    def loss(self, batch: ExplanationBatch) -> dict[str, torch.Tensor]:
        h, prior = self.prior_net(batch)
        beta = 0.0 if self.variant == "nokl" else self.beta_now
        mlf = kl_prior = kl_std = torch.zeros(len(batch), device=h.device)
        if self.variant == "norn" or not self.training:
            zs = [None if d is None else d[0] for d in prior]  # test phase (Fig. 2b): z_j = mu_p
        else:
            post = self.recognition_net(batch)
            zs = []
            for q, p in zip(post, prior):
                if q is None:
                    zs.append(None)
                    continue
                (mu_r, lv_r), (mu_p, lv_p) = q, p
                if self.variant == "nokl":  # Sec. 4.8: z = mu_r, TKL replaced by MSE(mu_r, mu_p)
                    zs.append(mu_r)
                    mse = (mu_r - mu_p).pow(2).mean(-1)
                    mlf, kl_prior = mlf + mse, kl_prior + mse
                    continue
                zs.append(mu_r + torch.randn_like(mu_r) * (0.5 * lv_r).exp())  # reparameterisation
                t, kp, ks = tkl(mu_r, lv_r, mu_p, lv_p, beta)
                mlf, kl_prior, kl_std = mlf + t, kl_prior + kp, kl_std + ks  # Eq. 7: sum of Eq. 6 over scales
        hidden = self.decode_hidden(self.reconstruction(h, zs), batch.seq[:, :-1])
        nll_sum, n_tok = projected_token_nll(hidden, batch.seq[:, 1:], self.word_emb.weight, self.out_bias, self.spec.pad_id)  # Eq. 9
        return {"loss": (nll_sum + mlf).mean(), "nll": nll_sum.sum() / n_tok.sum(),
                "kl_prior": kl_prior.mean(), "kl_std": kl_std.mean(), "beta": torch.tensor(beta)}

    @torch.no_grad()
    def decode(self, batch: ExplanationBatch, max_len: int) -> torch.Tensor:
        h, prior = self.prior_net(batch)
        prefix = self.reconstruction(h, [None if d is None else d[0] for d in prior])
        return self._greedy(lambda toks: F.linear(self.decode_hidden(prefix, toks)[:, -1], self.word_emb.weight, self.out_bias),
                            len(batch), max_len, h.device)


def _variant_factory(name: str, variant: str):
    def build_variant(n_users: int, n_items: int, spec: TextSpec, **params) -> MVAE:
        return MVAE(n_users, n_items, spec, variant=variant, **params)

    build_variant.__name__ = build_variant.__qualname__ = f"build_{variant}"
    build_variant.__doc__ = f"``{name}``: :class:`MVAE` with ``variant={variant!r}`` (see the module docstring)."
    return build_variant


for _name, _variant in VARIANT_NAMES.items():
    register(_name, role=GENERATION, search_space=SEARCH_SPACE,
             source="MVAE paper (this chapter)" + ("" if _variant == "mvae" else ", ablation of Sec. 4.3/4.8"))(
        _variant_factory(_name, _variant))
