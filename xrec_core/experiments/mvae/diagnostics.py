"""Why a generator writes one sentence for every pair: probes of the chapter's models while they train.

The chapter's health check fails MVAE on data where it writes the same sentence for every test pair.
:func:`collapse_diagnostic` retrains generators (by default PETER, MVAE and MVAE-NoRN) on one split of
the chapter's data exactly as a unit of the protocol trains them (:func:`~.protocol.neural_unit`: the
config's sizes, the registry model, the seed, the one training loop with early stopping) and measures,
once at initialisation and after every epoch, on the split's validation part (eval mode, so at test
time's architecture):

* ``nll_own``: the NLL per token with each sentence's own user, item and rating (the early-stopping
  metric), and ``nll_shuffled``: the same sentences conditioned on another pair's user, item, rating
  and feature (:func:`shuffled_conditioning`). A generator that ignores whom and what it writes for
  scores the same on both;
* for the MVAE variants, one value per latent scale (largest first): ``kl_posterior_prior``, the mean
  ``KL(q_rec || q_prior)`` (TKL's first term; none for NoRN, which has no recognition network),
  ``kl_posterior_standard``, the mean ``KL(q_rec || N(0, I))`` (the term TKL weighs by beta),
  ``posterior_mean_spread`` and ``prior_mean_spread``, the :func:`spread` of ``mu_rec`` and ``mu_prior``
  over the pairs; and ``prefix_spread``, the spread of the prefix ``[T1, T2]`` the reconstruction
  network gives the decoder from the prior means (what it reads at test time).

The probes run without gradients, in eval mode and without random draws, so the training is the
protocol unit's. After training (best epoch kept) each generator writes for the test part, and
:func:`output_summary` counts its distinct sentences, its most frequent one and scores BLEU-1/4 and
ROUGE-L F1 (:mod:`xrec_core.metrics.text`); the retrieval baselines are scored beside them.
``benchmarks/diag_mvae.py`` writes the result into a run record under ``results/diag_mvae/``, which
:func:`xrec_core.experiments.mvae.report.committed_mvae_diagnostic` renders in the chapter.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from ...metrics import text as tm
from ...models.explain.common import mean_token_nll
from ...models.mvae import MVAE, gaussian_kl
from .config import RETRIEVALS, MVAEConfig
from .data import EncodedSplit, ExplanationData
from .protocol import ANNEALED, _nonempty, anneal_start, encode_split, retrieval_unit, seeded_generator

log = logging.getLogger(__name__)

#: the generators probed by default: the baseline whose IDs enter its Transformer directly, MVAE, and
#: MVAE trained without recognition network, KL or sampling noise
PROBED_MODELS = ("PETER", "MVAE", "MVAE-NoRN")
#: the per-scale quantities of :func:`latent_statistics`
SCALE_FIELDS = ("kl_posterior_prior", "kl_posterior_standard", "posterior_mean_spread", "prior_mean_spread")


def spread(values: np.ndarray | torch.Tensor) -> float:
    """Standard deviation across pairs (the first axis), averaged over every other dimension."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.reshape(len(values), -1).std(axis=0).mean())


def derangement(n: int, seed: int) -> np.ndarray:
    """A random permutation of ``range(n)`` without fixed points (each pair gets another one), ``n >= 2``."""
    if n < 2:
        raise ValueError("a permutation without fixed points needs at least two elements")
    order = np.random.default_rng(seed).permutation(n)
    perm = np.empty(n, dtype=np.int64)
    perm[order] = np.roll(order, 1)  # a random cycle through all n positions
    return perm


def shuffled_conditioning(part: EncodedSplit, seed: int) -> EncodedSplit:
    """``part`` whose sentences are conditioned on another pair's user, item, rating, sentiment and feature."""
    perm = torch.as_tensor(derangement(len(part), seed))
    return dataclasses.replace(part, user=part.user[perm], item=part.item[perm], rating=part.rating[perm],
                               sentiment=part.sentiment[perm], feature=part.feature[perm])


@torch.no_grad()
def latent_statistics(model: MVAE, part: EncodedSplit, batch_size: int, device: torch.device) -> dict[str, Any]:
    """The latents and the decoder prefix of an MVAE variant on ``part`` (see the module docstring).

    Returns ``prefix_spread`` (a float) and, per scale that has a distribution (largest first), the
    lists :data:`SCALE_FIELDS`; the posterior ones are ``None`` for a variant without recognition network.
    """
    scales = [j for j, has in enumerate(model.with_dist) if has]
    with_posterior = model.variant != "norn"
    prefixes, prior_mu, post_mu, kl_prior, kl_standard = [], [], [], [], []
    for batch in part.batches(batch_size):
        batch = batch.to(device)
        h, prior = model.prior_net(batch)  # h: (B, d_smallest); prior: per scale (mu, logvar), each (B, d_j)
        prefixes.append(model.reconstruction(h, [None if d is None else d[0] for d in prior]))  # (B, 2, d)
        prior_mu.append([prior[j][0] for j in scales])
        if with_posterior:
            post = model.recognition_net(batch)  # per scale (mu, logvar), each (B, d_j)
            post_mu.append([post[j][0] for j in scales])
            kl_prior.append([gaussian_kl(*post[j], *prior[j]) for j in scales])  # each (B,)
            kl_standard.append([gaussian_kl(*post[j]) for j in scales])

    def per_scale(chunks: list[list[torch.Tensor]]) -> list[torch.Tensor]:
        return [torch.cat([chunk[k] for chunk in chunks]).cpu() for k in range(len(scales))]  # each (N, ...)

    out: dict[str, Any] = {"prefix_spread": spread(torch.cat(prefixes).cpu()),
                           "prior_mean_spread": [spread(mu) for mu in per_scale(prior_mu)]}
    if with_posterior:
        out["posterior_mean_spread"] = [spread(mu) for mu in per_scale(post_mu)]
        out["kl_posterior_prior"] = [float(kl.mean()) for kl in per_scale(kl_prior)]
        out["kl_posterior_standard"] = [float(kl.mean()) for kl in per_scale(kl_standard)]
    else:
        out.update(posterior_mean_spread=None, kl_posterior_prior=None, kl_posterior_standard=None)
    return out


def probe(model: torch.nn.Module, part: EncodedSplit, batch_size: int, device: torch.device, seed: int) -> dict[str, Any]:
    """The measures of the module docstring for ``model`` (in eval mode) on ``part``."""
    row = {"nll_own": mean_token_nll(model, part, batch_size, device),
           "nll_shuffled": mean_token_nll(model, shuffled_conditioning(part, seed), batch_size, device)}
    if isinstance(model, MVAE):
        row.update(latent_statistics(model, part, batch_size, device))
    return row


def output_summary(hypotheses: Sequence[Sequence[str]], references: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Distinct sentences, the most frequent one and its share, empty outputs, BLEU-1/4 and ROUGE-L F1 (percent)."""
    counts = Counter(" ".join(h) for h in hypotheses)
    top, top_count = counts.most_common(1)[0]
    scores = tm.text_metrics(references, [_nonempty(h) for h in hypotheses], with_meteor=False)
    return {"test_pairs": len(hypotheses), "distinct": len(counts), "unique_sentence_ratio": len(counts) / len(hypotheses),
            "empty": counts.get("", 0), "top_sentence": top, "top_share": top_count / len(hypotheses),
            **{m: scores[m] for m in ("BLEU-1", "BLEU-4", "ROUGE-L-F")}}


def probed_fit(name: str, exp: ExplanationData, enc: Mapping[str, EncodedSplit], spec: Any, cfg: MVAEConfig,
               split: int) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Train generator ``name`` as :func:`~.protocol.neural_unit` does, probing it before and after every epoch.

    MVAE's a0 (Eq. 11) is :func:`~.protocol.anneal_start` without an MVAE-NoKL run (the config's a0, or
    0 when it is to come from NoKL). Returns the fit's summary (learning curve, a0, test outputs) and
    the probe rows.
    """
    from ...device import pick_device

    steps_per_epoch = math.ceil(len(enc["train"]) / cfg.batch_size)
    a0 = anneal_start(cfg, None, steps_per_epoch) if name in ANNEALED else None
    model = seeded_generator(name, exp.n_users, exp.n_items, spec, cfg, split, None, a0)
    device = pick_device(cfg.device)
    probe_seed = cfg.seed + split

    def measure(epoch: int) -> None:
        rows.append({"model": name, "epoch": epoch, "steps": epoch * steps_per_epoch,
                     **probe(model, enc["valid"], cfg.batch_size, device, probe_seed)})
        log.info("%s epoch %d: validation NLL %.4f own, %.4f shuffled", name, epoch, rows[-1]["nll_own"],
                 rows[-1]["nll_shuffled"])

    rows: list[dict[str, Any]] = []
    model.to(device).eval()
    measure(0)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    model.fit(enc["train"], enc["valid"], report=lambda epoch, _valid_nll: measure(epoch))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    hypotheses = [s.split() for s in model.generate(enc["test"])]
    curve = model.curve.as_dict()
    fit = {"model": name, "epochs": curve["epochs"], "best_epoch": curve["best_epoch"],
           "best_valid_nll": model.curve.best_value, "stopped_early": curve["stopped_early"],
           "steps_per_epoch": steps_per_epoch, "anneal_a0": a0, "wall_s": wall, "cpu_s": cpu,
           **output_summary(hypotheses, enc["test"].tokens), "curve": curve}
    return fit, rows


def collapse_diagnostic(exp: ExplanationData, cfg: MVAEConfig, split: int = 0,
                        models: Sequence[str] = PROBED_MODELS) -> dict[str, Any]:
    """Probe ``models`` while they train on split ``split`` of ``exp`` (see the module docstring).

    Returns ``{"split": {...sizes}, "fits": [one row per model, the retrieval baselines first],
    "probes": [one row per model and epoch, epoch 0 = initialisation]}``; each neural fit row holds its
    learning curve under ``curve``.
    """
    from ...progress import tqdm

    parts, vocab, enc = encode_split(exp, split, cfg)
    sizes = {"split": split, "train": len(parts["train"]), "valid": len(parts["valid"]), "test": len(parts["test"]),
             "vocabulary": vocab.spec.vocab_size, "users": exp.n_users, "items": exp.n_items}
    fits = [{"model": name, **output_summary(retrieval_unit(name, enc)["hypotheses"], enc["test"].tokens)}
            for name in RETRIEVALS]
    probes: list[dict[str, Any]] = []
    for name in tqdm(models, desc="probed fits"):
        fit, rows = probed_fit(name, exp, enc, vocab.spec, cfg, split)
        log.info("%s: %d epochs (best %d), %d distinct sentences of %d", name, fit["epochs"], fit["best_epoch"],
                 fit["distinct"], fit["test_pairs"])
        fits.append(fit)
        probes += rows
    return {"split": sizes, "fits": fits, "probes": probes}
