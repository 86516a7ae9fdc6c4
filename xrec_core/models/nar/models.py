"""NAR, CAR, CNR and the contextual baselines VBPR, CER and NCF, as neural BPR rankers.

All models share the neural BPR set-up of the paper (Sec. 5.1.4 and footnote 2): ID embeddings
and feature embeddings of size ``dim`` (350), an MLP scoring layer, the BPR loss on (user,
positive, sampled negative) triples, Adam. ``f_u`` and ``f_i`` are the Eq. 1 feature vectors
divided by ``T`` (the paper's "normalized" feature vectors).

* :class:`NARNet` (Eqs. 2-4): user attention ``alpha_k = softmax_k(e_u M_a w_k)`` and item
  attention ``beta_k`` over the feature embeddings ``w_k``; the attention-aggregated feature
  representations enter the MLP beside ``e_u * e_i``. Its explanation is ``alpha``.
* :class:`ContextNet` (Eq. 5): ``MLP((e_u * e_i) + (E_u f_u * E_i f_i))`` with ``+`` the
  concatenation. CAR, CNR and CER use it; they differ in how they perturb features.
* :class:`VBPRNet`: the paper's "neural VBPR", ``MLP((e_u * e_i) + (theta_u * E f_i))``.
* :class:`NCFNet`: NeuMF (:class:`xrec_core.models.ncf.NeuMF`) in the same BPR set-up.

**Item bias (our addition).** Every score is ``MLP(...) + b_i``. The paper's scoring functions
(Eqs. 4, 5, 7) have no item term, and an MLP over element-wise products ``e_u * e_i`` cannot
express "item i is popular for everyone" without first learning a constant user direction. On
600 Instrument users, with early stopping, NAR reached 0.86x MostPop's NDCG@10 without it and
1.02x with it (VBPR: 0.99x and 0.98x; its gain came from early stopping, the first version's fixed
50 epochs overfit it to 0.79x). ``b_i`` depends on neither ``f_u`` nor the
attention, so NAR's attention and the gradients w.r.t. ``f_u`` behind CAR's and CNR's
explanations are unchanged in form. ``item_bias=False`` restores the paper's exact scoring.

**Training.** Each phase runs through :class:`xrec_core.training.Trainer` until validation
NDCG@10 (one held-out training positive per user, ranked among sampled candidates) stops
improving; the best state (network, item biases and the CAR/CNR perturbations) is kept.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn

from ...search_space import Int, LogFloat
from ...training import LearningCurve, Trainer
from ..registry import RANKING, register

log = logging.getLogger(__name__)


def _mlp(dim_in: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(dim_in, hidden), nn.ReLU(), nn.Linear(hidden, 1))


class ContextNet(nn.Module):
    """Eq. 5: ID interaction and projected feature interaction, scored by an MLP."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.E_u = nn.Linear(n_features, dim, bias=False)
        self.E_i = nn.Linear(n_features, dim, bias=False)
        self.mlp = _mlp(2 * dim, dim)
        nn.init.normal_(self.user.weight, std=0.01)
        nn.init.normal_(self.item.weight, std=0.01)

    def forward(self, u: torch.Tensor, i: torch.Tensor, f_u: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        ids = self.user(u) * self.item(i)  # (B, dim)
        feats = self.E_u(f_u) * self.E_i(f_i)  # (B, dim)
        return self.mlp(torch.cat([ids, feats], dim=-1)).squeeze(-1)  # (B,)


class VBPRNet(nn.Module):
    """Neural VBPR: a second user embedding ``theta_u`` meets the projected item features ``E f_i``."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.theta = nn.Embedding(n_users, dim)
        self.E = nn.Linear(n_features, dim, bias=False)
        self.mlp = _mlp(2 * dim, dim)
        for emb in (self.user, self.item, self.theta):
            nn.init.normal_(emb.weight, std=0.01)

    def forward(self, u: torch.Tensor, i: torch.Tensor, f_u: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        ids = self.user(u) * self.item(i)  # (B, dim)
        visual = self.theta(u) * self.E(f_i)  # (B, dim)
        return self.mlp(torch.cat([ids, visual], dim=-1)).squeeze(-1)  # (B,)


class NARNet(nn.Module):
    """Eqs. 2-4: user/item attention over feature embeddings, weighted by the feature values."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int) -> None:
        super().__init__()
        self.user, self.item = nn.Embedding(n_users, dim), nn.Embedding(n_items, dim)
        self.words = nn.Parameter(torch.randn(n_features, dim) * 0.01)  # w_k: (P, dim)
        self.M_a = nn.Parameter(torch.randn(dim, dim) * 0.01)
        self.M_b = nn.Parameter(torch.randn(dim, dim) * 0.01)
        self.mlp = _mlp(2 * dim, dim)
        nn.init.normal_(self.user.weight, std=0.01)
        nn.init.normal_(self.item.weight, std=0.01)

    def attention(self, e: torch.Tensor, M: torch.Tensor) -> torch.Tensor:
        """Eq. 2: ``softmax_k(e M w_k)``: (B, dim) -> (B, P)."""
        return torch.softmax(e @ M @ self.words.T, dim=-1)

    def forward(self, u: torch.Tensor, i: torch.Tensor, f_u: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        e_u, e_i = self.user(u), self.item(i)  # (B, dim)
        # attention depends only on the user (item): computed once per distinct id in the batch
        users, u_row = torch.unique(u, return_inverse=True)
        items, i_row = torch.unique(i, return_inverse=True)
        alpha = self.attention(self.user(users), self.M_a)[u_row]  # (B, P)
        beta = self.attention(self.item(items), self.M_b)[i_row]  # (B, P)
        agg_u = (alpha * f_u) @ self.words  # Eq. 3: sum_k alpha_k f_u^k w_k -> (B, dim)
        agg_i = (beta * f_i) @ self.words  # (B, dim)
        return self.mlp(torch.cat([e_u * e_i, agg_u * agg_i], dim=-1)).squeeze(-1)  # (B,)


class NCFNet(nn.Module):
    """NeuMF (He et al. 2017) with GMF size ``dim`` and MLP tower ``(2 dim, dim)``; features unused."""

    def __init__(self, n_users: int, n_items: int, n_features: int, dim: int) -> None:
        super().__init__()
        from ..ncf import NeuMF

        self.neumf = NeuMF(n_users, n_items, k=dim, mlp_layers=(2 * dim, dim))

    def forward(self, u: torch.Tensor, i: torch.Tensor, f_u: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        return self.neumf(u, i)  # (B,)


class ScoringState(nn.Module):
    """Everything early stopping keeps: the network, the item biases and the feature perturbations.

    ``delta_user`` (n_users, P) holds CAR's / CNR's user-feature perturbations (their
    explanations), ``delta_item`` (n_items, P) CER's item-feature perturbations; both are buffers,
    so the state kept at the best validation epoch carries the perturbations that belong to it.
    """

    def __init__(self, net: nn.Module, n_users: int, n_items: int, n_features: int, item_bias: bool) -> None:
        super().__init__()
        self.net = net
        self.bias = nn.Embedding(n_items, 1) if item_bias else None
        if self.bias is not None:
            nn.init.zeros_(self.bias.weight)
        self.register_buffer("delta_user", torch.zeros(n_users, n_features))
        self.register_buffer("delta_item", torch.zeros(n_items, n_features))

    def forward(self, u: torch.Tensor, i: torch.Tensor, f_u: torch.Tensor, f_i: torch.Tensor) -> torch.Tensor:
        score = self.net(u, i, f_u, f_i)  # (B,)
        return score if self.bias is None else score + self.bias(i).squeeze(-1)


def bpr_loss(pos: torch.Tensor, neg: torch.Tensor) -> torch.Tensor:
    """``-mean log sigma(x_ui - x_uj)``."""
    return -torch.nn.functional.logsigmoid(pos - neg).mean()


def sample_triples(train: sp.csr_matrix, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One (u, i, j) per training positive, ``j`` a sampled non-positive (uniform over items)."""
    users, pos = train.nonzero()
    neg = rng.integers(0, train.shape[1], size=len(users))
    for _ in range(5):
        bad = np.asarray(train[users, neg]).ravel() > 0
        if not bad.any():
            break
        neg[bad] = rng.integers(0, train.shape[1], size=int(bad.sum()))
    return users, pos, neg


def fgsm_perturbation(grad: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Eq. 6: ``delta = epsilon * grad / ||grad||_2`` per row (rows with a zero gradient stay 0)."""
    norm = grad.norm(dim=-1, keepdim=True)
    return torch.where(norm > 0, epsilon * grad / norm.clamp_min(1e-12), torch.zeros_like(grad))


def elastic_distance(delta: torch.Tensor, kind: str) -> torch.Tensor:
    """``||delta||_2^2`` (``"l2"``) or ``||delta||_2^2 + ||delta||_1`` (``"elastic"``), per row."""
    d = delta.pow(2).sum(-1)
    if kind == "elastic":
        d = d + delta.abs().sum(-1)
    elif kind != "l2":
        raise ValueError(f"distance must be 'l2' or 'elastic', got {kind!r}")
    return d


def ndcg_of_first(scores: np.ndarray, k: int) -> float:
    """Mean NDCG@k when each row's first column is its only relevant item (ties count against it)."""
    rank = (scores[:, 1:] >= scores[:, :1]).sum(axis=1)  # (V,) items scored at least as high
    return float(np.mean(np.where(rank < k, 1.0 / np.log2(rank + 2.0), 0.0)))


@dataclass
class FeatureInteractions:
    """What the rankers train on: implicit positives and the normalized Eq. 1 feature vectors."""

    interactions: sp.csr_matrix  # (n_users, n_items) binary training positives
    f_u: np.ndarray  # (n_users, P)
    f_i: np.ndarray  # (n_items, P)


@dataclass
class CandidateValidation:
    """Validation carved from training positives: per user one held-out positive (column 0) and sampled candidates."""

    users: np.ndarray  # (V,)
    pools: np.ndarray  # (V, 1 + C)
    k: int  # NDCG cut-off


class ExplainableRanker:
    """Base of NAR / CAR / CNR / CNR-L2 / CER / VBPR / NCF: scores, explanations and early-stopped training.

    Every argument comes from the chapter config (:class:`xrec_core.experiments.nar.NARConfig`).

    Parameters
    ----------
    dim : int
        ID and feature embedding size (Sec. 5.1.4: 350).
    lr, weight_decay : float
        Adam's learning rate and L2 weight decay.
    batch_size : int
        Triples per Adam step.
    max_epochs, patience : int
        Epoch cap and validations without improvement before a phase stops.
    item_bias : bool
        Add a learned item bias ``b_i`` to the score (our addition, see the module docstring).
    epsilon, adv_weight : float
        CAR's FGSM magnitude (Eq. 6) and the weight lambda of the adversarial loss (Eq. 8).
    cf_beta : float
        CNR's / CER's distance weight beta (Eq. 9).
    cf_outer, cf_inner : int
        Cap on CNR's minimax outer iterations (20 in the paper) and the Adam steps on the
        perturbation per outer iteration.
    cf_lr : float
        Adam's learning rate for the perturbation steps.
    cf_retrain_epochs : int
        Passes over the training triples per CNR outer iteration.
    seed : int
    device : str
    progress : bool
    """

    name: ClassVar[str] = ""
    net_class: ClassVar[type[nn.Module]] = ContextNet

    def __init__(self, *, dim: int, lr: float, weight_decay: float, batch_size: int, max_epochs: int, patience: int,
                 item_bias: bool, epsilon: float, adv_weight: float, cf_beta: float, cf_outer: int, cf_inner: int,
                 cf_lr: float, cf_retrain_epochs: int, seed: int, device: str = "cpu", progress: bool = False) -> None:
        self.dim, self.lr, self.weight_decay, self.batch_size = dim, lr, weight_decay, batch_size
        self.max_epochs, self.patience, self.item_bias = max_epochs, patience, item_bias
        self.epsilon, self.adv_weight = epsilon, adv_weight
        self.cf_beta, self.cf_outer, self.cf_inner, self.cf_lr, self.cf_retrain_epochs = cf_beta, cf_outer, cf_inner, cf_lr, cf_retrain_epochs
        self.seed, self.device, self.progress = seed, torch.device(device), progress
        self.curves: dict[str, LearningCurve] = {}
        self.flip_rates: list[float] = []

    # ------------------------------------------------------------------ set-up
    def _init(self, train: FeatureInteractions) -> None:
        torch.manual_seed(self.seed)
        self.rng = np.random.default_rng(self.seed)
        self.f_u = torch.as_tensor(train.f_u, dtype=torch.float32, device=self.device)  # (n_users, P)
        self.f_i = torch.as_tensor(train.f_i, dtype=torch.float32, device=self.device)  # (n_items, P)
        (n_users, P), n_items = train.f_u.shape, train.f_i.shape[0]
        net = self.net_class(n_users, n_items, P, self.dim)
        self.state = ScoringState(net, n_users, n_items, P, self.item_bias).to(self.device)
        self.train_matrix = sp.csr_matrix(train.interactions)
        # one Adam for every phase: a fresh one would restart its moment estimates and take
        # lr-sized steps on every weight of the converged base model (CER lost a third of its
        # validation NDCG in the first counterfactual epoch that way)
        self.optimizer = torch.optim.Adam(self.state.parameters(), lr=self.lr, weight_decay=self.weight_decay)

    def _optimizer(self) -> torch.optim.Optimizer:
        return self.optimizer

    def _scores(self, u: torch.Tensor, i: torch.Tensor, du: torch.Tensor | None = None,
                di: torch.Tensor | None = None) -> torch.Tensor:
        fu = self.f_u[u] if du is None else self.f_u[u] + du  # (B, P)
        fi = self.f_i[i] if di is None else self.f_i[i] + di  # (B, P)
        return self.state(u, i, fu, fi)  # (B,)

    def _batches(self, epoch: int) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        users, pos, neg = sample_triples(self.train_matrix, self.rng)
        order = self.rng.permutation(len(users))
        return [tuple(torch.as_tensor(x[order[s:s + self.batch_size]]) for x in (users, pos, neg))
                for s in range(0, len(order), self.batch_size)]

    def _bpr_step(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        u, i, j = batch
        return bpr_loss(self._scores(u, i), self._scores(u, j))

    def _trainer(self, phase: str, max_epochs: int | None = None) -> Trainer:
        return Trainer(max_epochs=max_epochs or self.max_epochs, patience=self.patience, mode="max", device=self.device,
                       valid_metric=f"valid NDCG@{self.valid.k}", progress=self.progress, desc=f"{self.name} {phase}")

    def _validate(self) -> float:
        return ndcg_of_first(self.score_candidates(self.valid.users, self.valid.pools), self.valid.k)

    def _fit_base(self, on_epoch: Any = None) -> None:
        self.curves["base"] = self._trainer("base").fit(self.state, batches=self._batches, step=self._bpr_step,
                                                        validate=self._validate, optimizer=self._optimizer(),
                                                        on_epoch=on_epoch)

    def _augment(self, on_epoch: Any = None) -> None:
        """The model's own augmentation phase after base training (none for NAR, VBPR, NCF)."""

    # ------------------------------------------------------------------ public interface
    def fit(self, train: FeatureInteractions, valid: CandidateValidation, on_epoch: Any = None) -> "ExplainableRanker":
        """Base BPR training, then the model's augmentation phase, each early-stopped on ``valid``.

        ``on_epoch(epoch, value)`` is called after every validation of the base phase (an Optuna
        pruning hook may raise there).
        """
        self.valid = valid
        self._init(train)
        self._fit_base(on_epoch)
        self._augment()
        return self

    @torch.no_grad()
    def score_candidates(self, users: np.ndarray, candidates: np.ndarray) -> np.ndarray:
        """Scores of each user's candidate items: ``candidates`` (n, C) -> (n, C)."""
        was_training = self.state.training
        self.state.eval()
        u = torch.as_tensor(np.repeat(users, candidates.shape[1]), device=self.device)
        i = torch.as_tensor(candidates.ravel(), device=self.device)
        out = torch.cat([self._scores(u[s:s + 8192], i[s:s + 8192]) for s in range(0, len(u), 8192)])
        self.state.train(was_training)
        return out.cpu().numpy().reshape(candidates.shape)

    def score(self, users: np.ndarray, items: np.ndarray | None = None) -> np.ndarray:
        """:class:`~xrec_core.models.registry.Ranker` interface: ``items`` (n, C) candidates, or ``None`` for all."""
        if items is None:
            items = np.tile(np.arange(self.f_i.shape[0]), (len(users), 1))
        return self.score_candidates(np.asarray(users), np.asarray(items))

    def explanations(self, users: np.ndarray) -> np.ndarray:
        """Explanation vectors (len(users), P) of the given users."""
        raise ValueError(f"{self.name} has no user explanation vector")


class _PerturbationExplainer(ExplainableRanker):
    @torch.no_grad()
    def explanations(self, users: np.ndarray) -> np.ndarray:
        """Perturbation magnitudes ``|delta_u|`` (CAR: Eq. 6; CNR: Eq. 9)."""
        return self.state.delta_user[torch.as_tensor(users, device=self.device)].abs().cpu().numpy()


_SHARED_SPACE = {"lr": LogFloat(1e-4, 1e-2), "dim": Int(16, 350, log=True), "weight_decay": LogFloat(1e-8, 1e-3)}


@register("NAR", role=RANKING, search_space=_SHARED_SPACE, source="NAR (paper 004, Sec. 3.2, Eqs. 2-4)")
class NAR(ExplainableRanker):
    """Whitebox: attention over review features; the user's attention is the explanation."""

    name = "NAR"
    net_class = NARNet

    @torch.no_grad()
    def explanations(self, users: np.ndarray) -> np.ndarray:
        net: NARNet = self.state.net
        e_u = net.user(torch.as_tensor(users, device=self.device))  # (n, dim)
        return net.attention(e_u, net.M_a).cpu().numpy()  # (n, P)


@register("CAR", role=RANKING, search_space=_SHARED_SPACE | {"epsilon": LogFloat(0.01, 2.0), "adv_weight": LogFloat(0.1, 10.0)},
          source="CAR (paper 004, Sec. 3.3, Eqs. 5-8)")
class CAR(_PerturbationExplainer):
    """Graybox: retrained on FGSM perturbations of the user features (Eq. 8); their Eq. 6 direction explains."""

    name = "CAR"

    def _fgsm(self, u: torch.Tensor, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """Eq. 6 on a batch: gradient of the BPR loss w.r.t. each triple's user features."""
        fu = self.f_u[u].clone().requires_grad_(True)  # (B, P)
        loss = bpr_loss(self.state(u, i, fu, self.f_i[i]), self.state(u, j, fu, self.f_i[j]))
        (grad,) = torch.autograd.grad(loss * len(u), fu)
        return fgsm_perturbation(grad, self.epsilon).detach()

    def _adversarial_step(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """Eq. 8: BPR loss plus lambda times the loss under fresh FGSM perturbations of the batch's users."""
        u, i, j = batch
        delta = self._fgsm(u, i, j)  # (B, P)
        return self._bpr_step(batch) + self.adv_weight * bpr_loss(self._scores(u, i, delta), self._scores(u, j, delta))

    def user_fgsm(self) -> torch.Tensor:
        """Per-user Eq. 6 perturbation from the gradient of the user's summed BPR loss (the explanations)."""
        users, pos, neg = sample_triples(self.train_matrix, self.rng)
        delta_in = torch.zeros_like(self.f_u, requires_grad=True)  # (n_users, P)
        u, i, j = (torch.as_tensor(x, device=self.device) for x in (users, pos, neg))
        loss = -torch.nn.functional.logsigmoid(self._scores(u, i, delta_in[u]) - self._scores(u, j, delta_in[u])).sum()
        (grad,) = torch.autograd.grad(loss, delta_in)
        return fgsm_perturbation(grad, self.epsilon).detach()

    def _augment(self, on_epoch: Any = None) -> None:
        self.curves["adversarial"] = self._trainer("adversarial").fit(
            self.state, batches=self._batches, step=self._adversarial_step, validate=self._validate,
            optimizer=self._optimizer(), on_epoch=on_epoch)
        self.state.delta_user.copy_(self.user_fgsm())


class _Counterfactual(ExplainableRanker):
    """Eq. 9's minimax: perturbations that flip the model's decisions, then retraining on them."""

    target: ClassVar[str] = "user"
    distance: ClassVar[str] = "elastic"

    def counterfactual_step(self) -> float:
        """Eq. 9, delta step: with the model fixed, find small perturbations that flip each (u, i, j) decision.

        Minimizes ``sum -log sigma(x_uj - x_ui) + beta * dist(delta)`` over the perturbations
        (per user for ``target="user"``, per item for ``"item"``); returns the share of training
        pairs whose decision is flipped afterwards.
        """
        users, pos, neg = sample_triples(self.train_matrix, self.rng)
        u, i, j = (torch.as_tensor(x, device=self.device) for x in (users, pos, neg))
        base = self.state.delta_user if self.target == "user" else self.state.delta_item
        delta = torch.zeros_like(base, requires_grad=True)  # (n_users or n_items, P)
        opt = torch.optim.Adam([delta], lr=self.cf_lr)
        self.state.requires_grad_(False)

        def pair_scores(d: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            if self.target == "user":
                return self._scores(u, i, d[u]), self._scores(u, j, d[u])
            return self._scores(u, i, di=d[i]), self._scores(u, j, di=d[j])

        for _ in range(self.cf_inner):
            x_ui, x_uj = pair_scores(delta)
            loss = -torch.nn.functional.logsigmoid(x_uj - x_ui).sum() + self.cf_beta * elastic_distance(delta, self.distance).sum()
            opt.zero_grad()
            loss.backward()
            opt.step()
        self.state.requires_grad_(True)
        with torch.no_grad():
            base.copy_(delta.detach())
            x_ui, x_uj = pair_scores(base)
            return float((x_ui < x_uj).float().mean())

    def _counterfactual_loss(self, batch: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """BPR loss on the data plus BPR loss on the counterfactually perturbed data (the theta step)."""
        u, i, j = batch
        if self.target == "user":
            du = self.state.delta_user[u]
            augmented = bpr_loss(self._scores(u, i, du), self._scores(u, j, du))
        else:
            augmented = bpr_loss(self._scores(u, i, di=self.state.delta_item[i]), self._scores(u, j, di=self.state.delta_item[j]))
        return self._bpr_step(batch) + augmented


@register("CNR", role=RANKING, search_space=_SHARED_SPACE | {"cf_beta": LogFloat(1e-5, 1e-1), "cf_lr": LogFloat(1e-3, 5e-2)},
          source="CNR (paper 004, Sec. 3.4, Eq. 9)")
class CNR(_Counterfactual, _PerturbationExplainer):
    """Blackbox: up to ``cf_outer`` minimax iterations (a delta step, then ``cf_retrain_epochs`` theta epochs)."""

    name = "CNR"

    def _outer_batches(self, epoch: int) -> list[tuple[torch.Tensor, ...]]:
        self.flip_rates.append(self.counterfactual_step())
        return [b for _ in range(self.cf_retrain_epochs) for b in self._batches(epoch)]

    def _augment(self, on_epoch: Any = None) -> None:
        self.curves["minimax"] = self._trainer("minimax", self.cf_outer).fit(
            self.state, batches=self._outer_batches, step=self._counterfactual_loss, validate=self._validate,
            optimizer=self._optimizer(), on_epoch=on_epoch)


@register("CNR-L2", role=RANKING, search_space=_SHARED_SPACE | {"cf_beta": LogFloat(1e-5, 1e-1), "cf_lr": LogFloat(1e-3, 5e-2)},
          source="CNR with the L2 distance of Eq. 9 (paper 004, Sec. 3.4)")
class CNRL2(CNR):
    """CNR with the squared L2 distance instead of the elastic net."""

    name = "CNR-L2"
    distance = "l2"


@register("CER", role=RANKING, search_space=_SHARED_SPACE | {"cf_beta": LogFloat(1e-5, 1e-1)},
          source="Tan et al. 2021 (counterfactual explainable recommendation), neural BPR version")
class CER(_Counterfactual):
    """The contextual ranker with Tan et al.'s post-hoc counterfactual item-feature perturbations.

    CER (CountER) explains a trained recommender: it searches the smallest change of an item's
    aspect features that flips the recommendation; it does not retrain on the changes. Our first
    version did retrain on them (one round, as data augmentation), and that retraining cost a third
    of the validation NDCG (0.30 -> 0.22 on 600 Instrument users) and put CER at 0.6-0.7x MostPop:
    perturbations chosen to flip decisions, fed back as if they kept them, teach the ranker noise.
    The paper's Table 4 has CER within 0.001 of VBPR, which fits a model ranked by its base network.
    """

    name = "CER"
    target = "item"

    def _augment(self, on_epoch: Any = None) -> None:
        self.flip_rates = [self.counterfactual_step()]

@register("VBPR", role=RANKING, search_space=_SHARED_SPACE, source="He & McAuley 2016, neural version (paper 004, Sec. 5.1.3)")
class VBPR(ExplainableRanker):
    """Neural VBPR over the Eq. 1 item features."""

    name = "VBPR"
    net_class = VBPRNet


class NCFRanker(ExplainableRanker):
    """The Tables 4-8 NCF row: NeuMF in the same neural BPR set-up (the shared ``NCF`` registry entry is the stand-alone NeuMF)."""

    name = "NCF"
    net_class = NCFNet


#: the search space of :class:`NCFRanker` (the chapter tunes it like the other neural rankers)
NCF_SEARCH_SPACE = _SHARED_SPACE


#: the chapter's ranker classes under the paper's table names
RANKERS: dict[str, type[ExplainableRanker]] = {c.name: c for c in (NAR, CAR, CNR, CNRL2, CER, VBPR, NCFRanker)}
