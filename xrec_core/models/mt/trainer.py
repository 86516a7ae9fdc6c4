"""Algorithm 1 of the MT model (Lu, Dong & Smyth, RecSys 2018, Sec. 3.4) and its Table-2 ablations.

Algorithm 1 alternates ALS updates of U and V toward the current textual features (Eqs. 11-12)
with teacher-forcing (T) updates of the generators, policy-gradient (G) updates (Eq. 3, rewards
from the discriminators with Monte Carlo rollouts) and discriminator (D) updates (Eq. 2). We run
it as four phases on :class:`~xrec_core.training.Trainer`, each until its validation metric stops
improving (see :meth:`MultiTaskModel.fit`): T pre-training, D pre-training, adversarial rounds of
G, D and T steps, and the final ALS sweeps. The paper trains a fixed number of epochs; an earlier
version of this chapter did too (5 in ``full``), which left MT-encoder worse than the global mean.
The generator loss carries the multi-task regularizer of Eq. 4,
here ``lambda_text/2 * ||U - U~||^2`` summed over the batch's users (and items), i.e. the
squared norm of Eq. 10 so that both halves of the alternation minimize the same objective.

Variants (Table 2):

* ``"full"`` (MT): document encoders + decoders + discriminators.
* ``"no_encoder"`` (MT-encoder): U~, V~ are free embeddings (lookup) instead of encoded documents;
  the decoder and the adversarial steps stay.
* ``"no_decoder"`` (MT-decoder): encoders only, trained to minimize ||U - U~|| (no decoder, no
  generator or discriminator steps).

Choices the paper leaves open, stated here and in the chapter: during training the document
of the target review's user (item) is a random sample of ``doc_sample`` of their *other*
training reviews (so the decoder cannot copy the target); at evaluation it is every training
review. MT-U, MT-I and MT-P share the two document encoders (one user encoder, one item
encoder, as in Sec. 3.2) and have one decoder and one discriminator each. The rating model
(Table 2 "MT") uses the features of these shared encoders.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ...search_space import Int, LogFloat
from ..registry import GENERATION, RATING, register
from .camf import ContextAwareMF
from .discriminator import ReviewDiscriminator
from .reinforce import batch_baseline, monte_carlo_rewards, reinforce_loss
from .seq2seq import DocumentEncoder, EntityEncoder, ReviewDecoder, sequence_log_probs

log = logging.getLogger(__name__)

VARIANTS = ("full", "no_encoder", "no_decoder")
DECODERS = ("U", "I", "P")


@dataclass
class ReviewTensors:
    """Every review of a dataset as padded token ids (review tokens then EOS, PAD after).

    Attributes
    ----------
    tokens : (n_reviews, L) int64
    users, items : (n_reviews,) int64 indices
    ratings : (n_reviews,) float
    """

    tokens: np.ndarray
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    n_users: int
    n_items: int
    vocab_size: int
    pad_id: int
    bos_id: int
    eos_id: int

    def __post_init__(self) -> None:
        n = len(self.tokens)
        if not (len(self.users) == len(self.items) == len(self.ratings) == n):
            raise ValueError("tokens, users, items and ratings must have one row per review")
        if self.tokens.ndim != 2 or self.tokens.shape[1] < 1:
            raise ValueError(f"tokens must be a (n_reviews, L) array, got shape {self.tokens.shape}")

    @property
    def lengths(self) -> np.ndarray:
        return (self.tokens != self.pad_id).sum(axis=1)


@dataclass
class ReviewSplit:
    """Some reviews of a :class:`ReviewTensors`: the ``train`` or ``valid`` argument of :meth:`MultiTaskModel.fit`."""

    data: ReviewTensors
    rows: np.ndarray


class MultiTaskModel:
    """Context-aware MF + adversarial seq2seq review generation, trained by Algorithm 1.

    Parameters
    ----------
    variant : {"full", "no_encoder", "no_decoder"}
        MT, MT-encoder or MT-decoder (Table 2).
    decoders : sequence of {"U", "I", "P"}
        Review generators to train: MT-U (conditioned on U~), MT-I (V~), MT-P ([U~, V~]).
    n_factors : int
        D, shared by the MF factors and the textual features.
    emb_dim, hidden : int
        Word-vector size k and decoder GRU units.
    lambda_u, lambda_v : float
        Eq. 10 prior weights (ALS).
    lambda_text : float
        lambda of Eq. 4 (weight of ||U - U~||^2 in the generator loss).
    max_epochs, patience : int
        Epoch cap and patience of every training phase's early stopping (see :meth:`fit`).
    t_steps, g_steps, d_steps : int
        Algorithm 1's inner iteration counts: teacher-forcing batches per pre-training epoch,
        G steps per adversarial epoch, D steps per discriminator pre-training epoch; an
        adversarial epoch makes ``d_steps`` D and ``t_steps`` T steps per ``g_steps`` G steps.
    als_max_sweeps : int
        Cap on the final ALS sweeps (early-stopped on the validation MSE).
    batch_size, doc_sample, n_rollouts, max_len : int
        Reviews per step, reviews per sampled training document, Monte Carlo rollouts per
        step, longest generated review (tokens incl. EOS).
    rollout_stride : int
        Roll out from every ``rollout_stride``-th prefix (1 = every step, the paper).
    lr, d_lr : float
        Adam learning rates of the generators (encoders included) and the discriminators.
    progress : bool
        Progress bars over each phase's epochs.
    pretrained : (vocab_size, emb_dim) array, optional
        word2vec vectors for the encoder and decoder embeddings.
    """

    def __init__(self, n_users: int, n_items: int, vocab_size: int, *, pad_id: int, bos_id: int, eos_id: int,
                 variant: str = "full", decoders: Sequence[str] = DECODERS, n_factors: int = 32, emb_dim: int = 64,
                 hidden: int = 64, disc_entity_dim: int = 16, disc_filters: int = 32, lambda_u: float = 1.0,
                 lambda_v: float = 1.0, lambda_text: float = 1.0, max_epochs: int = 50, patience: int = 3,
                 t_steps: int = 100, g_steps: int = 5, d_steps: int = 10, als_max_sweeps: int = 50, batch_size: int = 64,
                 doc_sample: int = 8, n_rollouts: int = 4, rollout_stride: int = 1, max_len: int = 40, lr: float = 1e-3, d_lr: float = 1e-3,
                 center: bool = True, pretrained: np.ndarray | None = None, seed: int = 0,
                 device: str | torch.device = "cpu", progress: bool = False) -> None:
        if variant not in VARIANTS:
            raise ValueError(f"Unknown variant {variant!r}; valid: {', '.join(VARIANTS)}")
        bad = sorted(set(decoders) - set(DECODERS))
        if bad:
            raise ValueError(f"Unknown decoder(s) {bad}; valid: {', '.join(DECODERS)}")
        self.n_users, self.n_items, self.vocab_size = n_users, n_items, vocab_size
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.variant = variant
        self.decoder_names = tuple(decoders) if variant != "no_decoder" else ()
        self.n_factors = n_factors
        self.lambda_text = lambda_text
        self.max_epochs, self.patience, self.als_max_sweeps = max_epochs, patience, als_max_sweeps
        self.t_steps, self.g_steps, self.d_steps = t_steps, g_steps, d_steps
        self.d_per_g = math.ceil(d_steps / g_steps) if g_steps else 0
        self.t_per_g = math.ceil(t_steps / g_steps) if g_steps else 0
        self.progress = progress
        self.curves: dict = {}
        self.batch_size, self.doc_sample, self.n_rollouts, self.max_len = batch_size, doc_sample, n_rollouts, max_len
        self.rollout_stride = rollout_stride
        self.seed = seed
        self.device = torch.device(device)
        torch.manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.mf = ContextAwareMF(n_factors, lambda_u, lambda_v, center=center, seed=seed)
        if variant == "no_encoder":
            self.user_enc: nn.Module = EntityEncoder(n_users, n_factors)
            self.item_enc: nn.Module = EntityEncoder(n_items, n_factors)
        else:
            self.user_enc = DocumentEncoder(vocab_size, emb_dim, n_factors, pad_id, pretrained)
            self.item_enc = DocumentEncoder(vocab_size, emb_dim, n_factors, pad_id, pretrained)
        cond = {"U": n_factors, "I": n_factors, "P": 2 * n_factors}
        ents = {"U": (n_users,), "I": (n_items,), "P": (n_users, n_items)}
        self.decoders = nn.ModuleDict({k: ReviewDecoder(vocab_size, emb_dim, hidden, cond[k], pad_id, pretrained,
                                                         banned_ids=(pad_id, bos_id))
                                       for k in self.decoder_names})
        self.discriminators = nn.ModuleDict({k: ReviewDiscriminator(vocab_size, emb_dim, ents[k], disc_entity_dim,
                                                                    disc_filters, pad_id=pad_id)
                                             for k in self.decoder_names})
        gen_params = [*self.user_enc.parameters(), *self.item_enc.parameters(), *self.decoders.parameters()]
        for m in (self.user_enc, self.item_enc, self.decoders, self.discriminators):
            m.to(self.device)
        self.g_opt = torch.optim.Adam(gen_params, lr=lr)
        self.d_opt = torch.optim.Adam(self.discriminators.parameters(), lr=d_lr) if self.decoder_names else None
        self._data: ReviewTensors | None = None

    # ------------------------------------------------------------------ data helpers
    def _tensor(self, a: np.ndarray, dtype=torch.long) -> torch.Tensor:
        return torch.as_tensor(a, dtype=dtype, device=self.device)

    def _index_docs(self, data: ReviewTensors, train_idx: np.ndarray) -> None:
        self._data = data
        self.train_idx = np.asarray(train_idx, dtype=np.int64)
        self.user_docs = [[] for _ in range(data.n_users)]
        self.item_docs = [[] for _ in range(data.n_items)]
        for r in self.train_idx:
            self.user_docs[data.users[r]].append(r)
            self.item_docs[data.items[r]].append(r)
        self.user_docs = [np.asarray(d, dtype=np.int64) for d in self.user_docs]
        self.item_docs = [np.asarray(d, dtype=np.int64) for d in self.item_docs]

    def _encode_sampled(self, enc: nn.Module, docs: list[np.ndarray], ids: np.ndarray, exclude: np.ndarray) -> torch.Tensor:
        """Textual features (B, D) of ``ids`` from up to ``doc_sample`` of their other training reviews."""
        if isinstance(enc, EntityEncoder):
            return enc(self._tensor(ids))
        rows, owners = [], []
        for b, (e, ex) in enumerate(zip(ids, exclude)):
            cand = docs[e][docs[e] != ex]
            if len(cand) > self.doc_sample:
                cand = self.rng.choice(cand, self.doc_sample, replace=False)
            rows.extend(cand.tolist())
            owners.extend([b] * len(cand))
        if not rows:
            return torch.zeros(len(ids), self.n_factors, device=self.device)
        tok = self._data.tokens[rows]
        return enc(self._tensor(tok), self._tensor(self._data.lengths[rows]), self._tensor(owners), len(ids))

    @torch.no_grad()
    def _encode_all(self, enc: nn.Module, owners_of_review: np.ndarray, n: int, chunk: int = 512) -> np.ndarray:
        """Textual features of every user (item) from all of their training reviews: (n, D)."""
        if isinstance(enc, EntityEncoder):
            return enc.table.weight.detach().cpu().numpy().astype(float)
        enc.eval()
        sums = np.zeros((n, self.n_factors))
        idx = self.train_idx
        for s in range(0, len(idx), chunk):
            rows = idx[s:s + chunk]
            h = enc.encode_reviews(self._tensor(self._data.tokens[rows]), self._tensor(self._data.lengths[rows]))
            np.add.at(sums, owners_of_review[rows], h.cpu().numpy())
        enc.train()
        counts = np.bincount(owners_of_review[idx], minlength=n)
        return sums / np.maximum(counts, 1)[:, None]

    def text_features(self) -> tuple[np.ndarray, np.ndarray]:
        """Current U~ (N, D) and V~ (M, D) from the full training documents."""
        return (self._encode_all(self.user_enc, self._data.users, self.n_users),
                self._encode_all(self.item_enc, self._data.items, self.n_items))

    def _cond(self, name: str, u_feat: torch.Tensor, v_feat: torch.Tensor) -> torch.Tensor:
        if name == "P":
            return torch.cat([u_feat, v_feat], dim=-1)                            # (B, 2D)
        return u_feat if name == "U" else v_feat                                  # (B, D)

    def _entities(self, name: str, users: torch.Tensor, items: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return {"U": (users,), "I": (items,), "P": (users, items)}[name]

    def _batch(self) -> np.ndarray:
        return self.rng.choice(self.train_idx, min(self.batch_size, len(self.train_idx)), replace=False)

    def _reg(self, rows: np.ndarray, u_feat: torch.Tensor, v_feat: torch.Tensor) -> torch.Tensor:
        """lambda_text/2 * (||U_i - U~_i||^2 + ||V_j - V~_j||^2) averaged over the batch (Eq. 4)."""
        U = self._tensor(self.mf.U[self._data.users[rows]], torch.float32)
        V = self._tensor(self.mf.V[self._data.items[rows]], torch.float32)
        return 0.5 * self.lambda_text * (((U - u_feat) ** 2).sum(-1) + ((V - v_feat) ** 2).sum(-1)).mean()

    def _features(self, rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        u = self._encode_sampled(self.user_enc, self.user_docs, self._data.users[rows], rows)
        v = self._encode_sampled(self.item_enc, self.item_docs, self._data.items[rows], rows)
        return u, v

    # ------------------------------------------------------------------ Algorithm 1 steps
    def t_step(self, rows: np.ndarray) -> float:
        """Teacher forcing (maximum likelihood) + Eq. 4 regularizer on the reviews ``rows``."""
        u, v = self._features(rows)
        loss = self._reg(rows, u, v)
        targets = self._tensor(self._data.tokens[rows])
        for name, dec in self.decoders.items():
            logp, mask = sequence_log_probs(dec, self._cond(name, u, v), targets, self.bos_id, self.pad_id, self.eos_id)
            loss = loss - logp.sum() / mask.sum()
        self.g_opt.zero_grad()
        loss.backward()
        self.g_opt.step()
        return loss.item()

    def _reward_fn(self, name: str, users: torch.Tensor, items: torch.Tensor):
        disc = self.discriminators[name]
        ents = self._entities(name, users, items)
        return lambda seqs: torch.sigmoid(disc(seqs, ents))

    def g_step(self, rows: np.ndarray) -> float:
        """Policy gradient (Eq. 3) with Monte Carlo rewards + Eq. 4 regularizer on the reviews ``rows``."""
        u, v = self._features(rows)
        users, items = self._tensor(self._data.users[rows]), self._tensor(self._data.items[rows])
        loss = self._reg(rows, u, v)
        self.discriminators.eval()
        for name, dec in self.decoders.items():
            cond = self._cond(name, u, v)
            c = cond.detach()
            seqs = dec.sample(c, self.max_len, self.bos_id, self.eos_id, self.pad_id)        # (B, L)
            mask = (seqs != self.pad_id).float()
            rewards = monte_carlo_rewards(
                seqs, mask, lambda p: dec.sample(c, self.max_len, self.bos_id, self.eos_id, self.pad_id, prefix=p),
                self._reward_fn(name, users, items), self.n_rollouts, self.rollout_stride)    # (B, L)
            logp, _ = sequence_log_probs(dec, cond, seqs, self.bos_id, self.pad_id, self.eos_id)
            loss = loss + reinforce_loss(logp, rewards, batch_baseline(rewards, mask), mask) / mask.sum(1).mean()
        self.discriminators.train()
        self.g_opt.zero_grad()
        loss.backward()
        self.g_opt.step()
        return loss.item()

    def _real_and_fake(self, name: str, rows: np.ndarray, u: torch.Tensor, v: torch.Tensor
                       ) -> tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, ...]]:
        """Real reviews ``rows`` and reviews generated for the same entities, padded alike: (B, L) each."""
        real = self._tensor(self._data.tokens[rows])
        fake = self.decoders[name].sample(self._cond(name, u, v), self.max_len, self.bos_id, self.eos_id, self.pad_id)
        fake = _pad_to(fake, real.shape[1], self.pad_id)
        real = _pad_to(real, fake.shape[1], self.pad_id)
        users, items = self._tensor(self._data.users[rows]), self._tensor(self._data.items[rows])
        return real, fake, self._entities(name, users, items)

    def d_step(self, rows: np.ndarray) -> float:
        """Eq. 2: real reviews ``rows`` -> 1, generated reviews for the same entities -> 0."""
        with torch.no_grad():
            u, v = self._features(rows)
        bce = nn.BCEWithLogitsLoss()
        loss = torch.zeros((), device=self.device)
        for name in self.decoder_names:
            with torch.no_grad():
                real, fake, ents = self._real_and_fake(name, rows, u, v)
            disc = self.discriminators[name]
            logits = torch.cat([disc(real, ents), disc(fake, ents)])                   # (2B,)
            labels = torch.cat([torch.ones(len(rows)), torch.zeros(len(rows))]).to(self.device)
            loss = loss + bce(logits, labels)
        self.d_opt.zero_grad()
        loss.backward()
        self.d_opt.step()
        return loss.item()

    def adversarial_round(self, rows: np.ndarray) -> float:
        """One round of Algorithm 1's inner loop: a G step on ``rows``, then ``d_per_g`` D steps and
        ``t_per_g`` teacher-forcing steps on fresh batches; returns the G step's loss (Eqs. 3-4)."""
        g_loss = self.g_step(rows)
        for _ in range(self.d_per_g):
            self.d_step(self._batch())
        for _ in range(self.t_per_g):
            self.t_step(self._batch())
        return g_loss

    # ------------------------------------------------------------------ early stopping hooks
    def state_dict(self) -> dict:
        """Every trained part (networks and the MF factors), for :class:`~xrec_core.training.Trainer`."""
        return {"user_enc": self.user_enc.state_dict(), "item_enc": self.item_enc.state_dict(),
                "decoders": self.decoders.state_dict(), "discriminators": self.discriminators.state_dict(),
                "U": self.mf.U.copy(), "V": self.mf.V.copy()}

    def load_state_dict(self, state: dict) -> None:
        self.user_enc.load_state_dict(state["user_enc"])
        self.item_enc.load_state_dict(state["item_enc"])
        self.decoders.load_state_dict(state["decoders"])
        self.discriminators.load_state_dict(state["discriminators"])
        self.mf.U, self.mf.V = state["U"].copy(), state["V"].copy()

    def _epoch_batches(self, n_batches: int, sweep: bool) -> Iterator[np.ndarray]:
        """An epoch of Algorithm 1: (optionally) one ALS sweep toward the current textual features
        (Eqs. 11-12), then ``n_batches`` random batches of training reviews."""
        if sweep:
            self.mf.sweep(*self.text_features())
        for _ in range(n_batches):
            yield self._batch()

    def valid_mse(self) -> float:
        """MSE of the current MF on the validation reviews."""
        v = self.valid_idx
        return float(np.mean((self.predict(self._data.users[v], self._data.items[v]) - self._data.ratings[v]) ** 2))

    def valid_perplexity(self) -> float:
        """Perplexity of the validation reviews pooled over the decoders (features from the training documents)."""
        self.U_text, self.V_text = self.text_features()
        nll, count = 0.0, 0
        for name in self.decoder_names:
            a, b = self.neg_log_likelihood(name, self.valid_idx)
            nll, count = nll + a, count + b
        return float(np.exp(nll / max(count, 1)))

    def valid_discriminator_accuracy(self) -> float:
        """Mean accuracy of the discriminators, real validation reviews against generated ones."""
        self.U_text, self.V_text = self.text_features()
        accs = [c / n for c, n in (self.discriminator_counts(name, self.valid_idx) for name in self.decoder_names)]
        return float(np.mean(accs))

    def fit(self, train: ReviewSplit, valid: ReviewSplit,
            after_phase: Callable[[dict[str, dict[str, Any]]], None] | None = None) -> "MultiTaskModel":
        """Algorithm 1 on the training reviews ``train``, early-stopped on the reviews ``valid``.

        Four phases, each a :class:`~xrec_core.training.Trainer` run until its validation metric
        stops improving (``patience``, under ``max_epochs``); every epoch starts with an ALS sweep
        of U, V toward the current textual features (Eqs. 11-12):

        1. generator pre-training: teacher forcing + Eq. 4 (validation perplexity); for MT-decoder,
           which has no decoder, the encoders learn Eq. 4 alone (validation MSE);
        2. discriminator pre-training: Eq. 2 (validation accuracy, real vs. generated reviews);
        3. adversarial training: rounds of one G step (Eq. 3), D steps and T steps in the
           proportions ``g_steps : d_steps : t_steps`` of Algorithm 1 (validation perplexity;
           the round does its own updates);
        4. rating model: ALS sweeps with the final textual features (validation MSE).

        ``valid`` (carved from the training fold, never the test fold) is held out of every
        phase: its reviews are in no user's or item's document and in no rating the MF sees.
        The learning curves are in :attr:`curves`. ``after_phase``, if given, is called with
        ``{phase: curve.as_dict()}`` as each phase ends; a tuning objective passes its convergence
        check, which raises as soon as a phase ends at its cap (a generator still improving after
        its pre-training cap otherwise cost the trial its discriminator and adversarial phases too).
        """
        from ...training import LearningCurve, Trainer

        if valid.data is not train.data:
            raise ValueError("train and valid must index the same ReviewTensors")
        if len(valid.rows) == 0:
            raise ValueError("MT needs validation reviews for early stopping")
        data = train.data
        self._index_docs(data, train.rows)
        self.valid_idx = np.asarray(valid.rows, dtype=np.int64)
        t = self.train_idx
        self.mf.init(data.users[t], data.items[t], data.ratings[t], data.n_users, data.n_items)

        def trainer(phase: str, metric: str, mode: str = "min", max_epochs: int | None = None,
                    min_delta: float = 0.0) -> Trainer:
            return Trainer(max_epochs=max_epochs or self.max_epochs, patience=self.patience, mode=mode,
                           min_delta=min_delta, valid_metric=metric, device=self.device, progress=self.progress,
                           desc=f"MT[{self.variant}] {phase}")

        def finished(phase: str, curve: LearningCurve) -> None:
            self.curves[phase] = curve
            if after_phase is not None:
                after_phase({phase: curve.as_dict()})

        self.curves = {}
        if not self.decoder_names:  # MT-decoder: the encoders learn Eq. 4 only
            finished("encoder training", trainer("encoders", "validation MSE").fit(
                self, batches=lambda e: self._epoch_batches(self.t_steps, sweep=True), step=self.t_step,
                validate=self.valid_mse))
        else:
            finished("generator pre-training", trainer("generator", "validation perplexity").fit(
                self, batches=lambda e: self._epoch_batches(self.t_steps, sweep=True), step=self.t_step,
                validate=self.valid_perplexity))
            finished("discriminator pre-training", trainer("discriminator", "validation accuracy", "max").fit(
                self, batches=lambda e: self._epoch_batches(self.d_steps, sweep=False), step=self.d_step,
                validate=self.valid_discriminator_accuracy))
            if self.g_steps:
                finished("adversarial training", trainer("adversarial", "validation perplexity").fit(
                    self, batches=lambda e: self._epoch_batches(self.g_steps, sweep=True), step=self.adversarial_round,
                    validate=self.valid_perplexity))
        self.U_text, self.V_text = self.text_features()
        # ALS creeps on by tiny steps once converged: an improvement must exceed 1e-4 in MSE
        finished("rating (ALS)", trainer("ALS", "validation MSE", max_epochs=self.als_max_sweeps, min_delta=1e-4).fit(
            _FactorState(self.mf), batches=lambda e: [None], step=lambda _: self.mf.sweep(self.U_text, self.V_text),
            validate=self.valid_mse))
        return self

    # ------------------------------------------------------------------ evaluation
    def predict(self, users: np.ndarray, items: np.ndarray) -> np.ndarray:
        """Predicted ratings mu + U_i^T V_j."""
        return self.mf.predict(users, items)

    def _eval_cond(self, name: str, users: np.ndarray, items: np.ndarray) -> torch.Tensor:
        u = self._tensor(self.U_text[users], torch.float32)
        v = self._tensor(self.V_text[items], torch.float32)
        return self._cond(name, u, v)

    @torch.no_grad()
    def neg_log_likelihood(self, name: str, rows: np.ndarray, chunk: int = 256) -> tuple[float, int]:
        """Summed -log p of the reviews ``rows`` (EOS included) under decoder ``name`` and their token count."""
        dec = self.decoders[name]
        dec.eval()
        total, count = 0.0, 0
        for s in range(0, len(rows), chunk):
            r = rows[s:s + chunk]
            cond = self._eval_cond(name, self._data.users[r], self._data.items[r])
            logp, mask = sequence_log_probs(dec, cond, self._tensor(self._data.tokens[r]), self.bos_id, self.pad_id, self.eos_id)
            total -= float(logp.sum())
            count += int(mask.sum())
        dec.train()
        return total, count

    def perplexity(self, name: str, rows: np.ndarray) -> float:
        """exp of the mean per-token negative log-likelihood of the reviews ``rows``."""
        nll, n = self.neg_log_likelihood(name, np.asarray(rows))
        return float(np.exp(nll / n))

    @torch.no_grad()
    def generate(self, name: str, users: np.ndarray, items: np.ndarray, max_len: int | None = None,
                 greedy: bool = True, chunk: int = 256, min_len: int = 0) -> np.ndarray:
        """Generated explanations (n, L) token ids (EOS then PAD at the end; no EOS before ``min_len`` words)."""
        dec = self.decoders[name]
        dec.eval()
        out = []
        for s in range(0, len(users), chunk):
            cond = self._eval_cond(name, users[s:s + chunk], items[s:s + chunk])
            out.append(dec.sample(cond, max_len or self.max_len, self.bos_id, self.eos_id, self.pad_id, greedy=greedy,
                                  min_len=min_len).cpu().numpy())
        dec.train()
        return np.concatenate(out) if out else np.zeros((0, max_len or self.max_len), dtype=np.int64)

    @torch.no_grad()
    def discriminator_scores(self, name: str, tokens: np.ndarray, users: np.ndarray, items: np.ndarray,
                             disc: ReviewDiscriminator | None = None) -> np.ndarray:
        """D(review | entity) in [0, 1] for each row."""
        disc = disc or self.discriminators[name]
        was_training = disc.training
        disc.eval()
        ents = self._entities(name, self._tensor(users), self._tensor(items))
        p = torch.sigmoid(disc(self._tensor(tokens), ents)).cpu().numpy()
        disc.train(was_training)
        return p

    def shuffled_label_test(self, name: str, rows: np.ndarray, seed: int = 0) -> tuple[int, int]:
        """Sec. 4.3: does the user (``"U"``) or item (``"I"``) discriminator know who wrote a review?

        Every review of ``rows`` is scored twice: with its real user (item), label 1, and with a
        swapped one, label 0, taken from another review of ``rows`` (the paper shuffles the labels
        of the test reviews; :func:`shuffled_entities`). The two classes are equally large and hold
        the same entities, so any constant answer, any discriminator blind to the entity and any
        that scores the entity alone (an item prior, for instance) score exactly 50% at the 0.5
        threshold: chance is 50% by construction. (Swapped entities drawn uniformly from all items
        put rarely seen items in the swapped class and popular ones in the real class, so a
        discriminator that scores rare items higher could land below 50%; the test before that
        flipped a random half of the labels.) Returns ``(correct, total)``; ``total`` is
        ``2 len(rows)`` less twice the reviews whose entity no shuffle can change (one entity on
        more than half of ``rows``).
        """
        if name not in ("U", "I"):
            raise ValueError("the shuffled-label test is defined for the user ('U') or item ('I') discriminator")
        rng = np.random.default_rng(seed)
        d = self._data
        rows = np.asarray(rows)
        real_ent = d.users[rows] if name == "U" else d.items[rows]
        swapped, kept = shuffled_entities(real_ent, rng)
        rows, real_ent, swapped = rows[kept], real_ent[kept], swapped[kept]
        users, items = d.users[rows], d.items[rows]
        tok = np.concatenate([d.tokens[rows], d.tokens[rows]])
        ent = np.concatenate([real_ent, swapped])
        p = self.discriminator_scores(name, tok, ent if name == "U" else np.concatenate([users, users]),
                                      ent if name == "I" else np.concatenate([items, items]))
        y = np.concatenate([np.ones(len(rows), bool), np.zeros(len(rows), bool)])
        return int(np.sum((p > 0.5) == y)), int(len(y))

    @torch.no_grad()
    def discriminator_counts(self, name: str, rows: np.ndarray, chunk: int = 256) -> tuple[int, int]:
        """The discriminator's own task (Eq. 2) on ``rows``: real reviews against reviews generated
        for the same pairs, ``(correct, total)`` at the 0.5 threshold (``total = 2 len(rows)``)."""
        d = self._data
        correct = 0
        for s in range(0, len(rows), chunk):
            r = np.asarray(rows[s:s + chunk])
            fake = self.generate(name, d.users[r], d.items[r], greedy=False)
            width = max(fake.shape[1], d.tokens.shape[1])
            tok = np.concatenate([_pad_np(d.tokens[r], width, self.pad_id), _pad_np(fake, width, self.pad_id)])
            p = self.discriminator_scores(name, tok, np.concatenate([d.users[r]] * 2), np.concatenate([d.items[r]] * 2))
            correct += int(np.sum(p[: len(r)] > 0.5) + np.sum(p[len(r):] <= 0.5))
        return correct, 2 * len(rows)

    def discriminator_learning_curve(self, name: str, test_rows: np.ndarray, n_steps: int = 100,
                                     eval_every: int = 5, seed: int = 0) -> dict[str, list[float]]:
        """Fig. 3: train a fresh discriminator against the fully trained generator and record its
        accuracy on held-out reviews (real test reviews vs. reviews generated for the same pairs)."""
        torch.manual_seed(seed)
        rng = np.random.default_rng(seed)
        old = self.discriminators[name]
        disc = ReviewDiscriminator(self.vocab_size, old.embed.embedding_dim, tuple(e.num_embeddings for e in old.entities),
                                   old.entities[0].embedding_dim, old.convs[0].out_channels, old.windows,
                                   pad_id=self.pad_id).to(self.device)
        opt = torch.optim.Adam(disc.parameters(), lr=self.d_opt.param_groups[0]["lr"])
        bce = nn.BCEWithLogitsLoss()
        d = self._data
        fake_test = self.generate(name, d.users[test_rows], d.items[test_rows], greedy=False)
        real_test = d.tokens[test_rows]
        width = max(fake_test.shape[1], real_test.shape[1])
        eval_tok = np.concatenate([_pad_np(real_test, width, self.pad_id), _pad_np(fake_test, width, self.pad_id)])
        eval_u = np.concatenate([d.users[test_rows]] * 2)
        eval_i = np.concatenate([d.items[test_rows]] * 2)
        eval_y = np.concatenate([np.ones(len(test_rows)), np.zeros(len(test_rows))])

        def accuracy() -> float:
            p = self.discriminator_scores(name, eval_tok, eval_u, eval_i, disc=disc)
            return float(np.mean((p > 0.5) == (eval_y == 1)))

        steps, accs = [0], [accuracy()]
        for step in range(1, n_steps + 1):
            rows = rng.choice(self.train_idx, min(self.batch_size, len(self.train_idx)), replace=False)
            fake = self.generate(name, d.users[rows], d.items[rows], greedy=False)
            w = max(fake.shape[1], d.tokens.shape[1])
            tok = np.concatenate([_pad_np(d.tokens[rows], w, self.pad_id), _pad_np(fake, w, self.pad_id)])
            uu, ii = np.concatenate([d.users[rows]] * 2), np.concatenate([d.items[rows]] * 2)
            y = torch.cat([torch.ones(len(rows)), torch.zeros(len(rows))]).to(self.device)
            logits = disc(self._tensor(tok), self._entities(name, self._tensor(uu), self._tensor(ii)))
            loss = bce(logits, y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            if step % eval_every == 0 or step == n_steps:
                steps.append(step)
                accs.append(accuracy())
        return {"step": steps, "accuracy": accs}


class _FactorState:
    """The MF factors of a :class:`ContextAwareMF` as a state for :class:`~xrec_core.training.Trainer`."""

    def __init__(self, mf: ContextAwareMF) -> None:
        self.mf = mf

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"U": self.mf.U.copy(), "V": self.mf.V.copy()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.mf.U, self.mf.V = state["U"].copy(), state["V"].copy()


def _variant(variant: str, decoders: Sequence[str] = DECODERS):
    def factory(**params) -> MultiTaskModel:
        return MultiTaskModel(variant=variant, decoders=decoders, **params)
    return factory


_SPACE = {"lambda_text": LogFloat(0.01, 10.0), "lr": LogFloat(1e-4, 1e-2), "d_lr": LogFloat(1e-4, 1e-2),
          "hidden": Int(32, 256, log=True)}
_SOURCE = "Lu, Dong & Smyth, RecSys 2018"
#: Table 2 (rating) and Tables 3-4 (explanation) names; MT-U/I/P alone train one decoder each
#: (in the chapter they share MT's encoders and come from one fit of "MT").
for _name, _variant_name, _decoders, _role in (
        ("MT", "full", DECODERS, RATING), ("MT-encoder", "no_encoder", DECODERS, RATING),
        ("MT-decoder", "no_decoder", DECODERS, RATING), ("MT-U", "full", ("U",), GENERATION),
        ("MT-I", "full", ("I",), GENERATION), ("MT-P", "full", ("P",), GENERATION)):
    register(_name, role=_role, search_space=_SPACE, source=_SOURCE)(_variant(_variant_name, _decoders))


def _pad_to(x: torch.Tensor, width: int, pad_id: int) -> torch.Tensor:
    if x.shape[1] >= width:
        return x
    return torch.cat([x, x.new_full((x.shape[0], width - x.shape[1]), pad_id)], dim=1)


def shuffled_entities(real: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Shuffle the entity labels ``real`` (one per review) so that no review keeps its own entity.

    Returns ``(swapped, kept)``: ``swapped`` is a permutation of ``real``, so the swapped labels hold
    the same entities, as often, as the real ones; ``kept`` (bool) is False only for the reviews
    whose entity no exchange could change (an entity on more than half of the reviews). Dropping
    them drops the same entity from both sides, so the kept labels are still a permutation.
    """
    # numpy has no derangement of a multiset: start from a random permutation and repair each
    # review that kept its entity by exchanging its label with another review's, where both change
    swapped = real[rng.permutation(len(real))]
    kept = np.ones(len(real), bool)
    for i in np.flatnonzero(swapped == real):
        if swapped[i] != real[i]:
            continue  # already repaired by an earlier exchange
        partners = np.flatnonzero((swapped != real[i]) & (real != swapped[i]))
        if len(partners) == 0:
            kept[i] = False
            continue
        j = rng.choice(partners)
        swapped[i], swapped[j] = swapped[j], swapped[i]
    return swapped, kept


def _pad_np(x: np.ndarray, width: int, pad_id: int) -> np.ndarray:
    if x.shape[1] >= width:
        return x
    return np.concatenate([x, np.full((x.shape[0], width - x.shape[1]), pad_id, dtype=x.dtype)], axis=1)
