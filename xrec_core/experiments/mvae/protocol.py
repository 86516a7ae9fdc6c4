"""MVAE chapter protocol (Sec. 4): splits, model building, training, generation, metrics, Fig. 4.

``n_splits`` random 8:1:1 splits (PETER's index files on PETER's data), results averaged;
vocabulary of the ``vocab_size`` most frequent training words; every generator is trained with
teacher forcing on the training part through :meth:`ExplanationGenerator.fit
<xrec_core.models.explain.common.ExplanationGenerator.fit>` (one loop on
:class:`xrec_core.training.Trainer`: AdamW, warm-up, clipping, the paper's lr decay, early
stopping on the validation part's NLL per token, best epoch kept) and writes greedily up to
``max_words`` tokens for the test part. Metrics (:mod:`xrec_core.metrics.text`): BLEU-1/4
(sacrebleu), ROUGE-1/L P/R/F (rouge-score), METEOR 1.5, and PETER's FMR/FCR/DIV/USR. One unit of
work = one split x one model, stored by :class:`~xrec_core.records.UnitStore`, so an interrupted
run resumes.

Training choices the paper leaves open (stated in the chapter): the baselines use their
published architectures (at the config's sizes) with the same optimiser and budget as MVAE
instead of their own optimisers (PETER's SGD with lr 1.0, NETE's Adam), so that every model
stops by the same rule.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ...metrics import text as tm
from ...models import registry
from ...models.explain.common import TextSpec, TrainingSettings
from ...records import UnitStore
from ..common import units_dir
from .config import MVAE_MODELS, RETRIEVALS, RUNTIME_FIELDS, MVAEConfig
from .data import EncodedSplit, ExplanationData, Vocab, duplicate_half, encode_part, split_rows

log = logging.getLogger(__name__)

#: the MVAE variants whose TKL has the annealed beta term (Eq. 11 needs a0 for them)
ANNEALED = ("MVAE", "MVAE-NoMLF")
#: Fig. 4 and Fig. 5 group users by their number of training examples: bins [1], [2], [3, 4], [5, 9], [10, inf)
COUNT_BIN_EDGES = (1, 2, 3, 5, 10)


def unit_store(cfg: MVAEConfig) -> UnitStore:
    """Resumable units under :func:`xrec_core.experiments.common.units_dir`; the fingerprint leaves out
    the runtime fields, the number of splits and the model list (every unit is one split x one model)."""
    science = {k: v for k, v in cfg.as_dict().items() if k not in RUNTIME_FIELDS}
    return UnitStore(units_dir("mvae", cfg), science, code_scope="experiments.mvae")


# ============================================================================ models
def training_settings(cfg: MVAEConfig, split: int, lr: float | None = None) -> TrainingSettings:
    """The one training recipe of every generator, from the config (``lr`` may come from tuning)."""
    return TrainingSettings(lr=cfg.lr if lr is None else float(lr), warmup_steps=cfg.warmup_steps, clip=cfg.clip,
                            lr_decay=cfg.lr_decay, decay_threshold=cfg.decay_threshold, batch_size=cfg.batch_size,
                            max_epochs=cfg.max_epochs, patience=cfg.patience, max_words=cfg.max_words,
                            seed=cfg.seed + split, device=cfg.device)


def model_params(name: str, cfg: MVAEConfig) -> dict[str, Any]:
    """Constructor keywords of generator ``name`` from the config (the one place that maps fields to models)."""
    if name == "NRT":
        return {"d_emb": cfg.nrt_d_emb, "d_hidden": cfg.nrt_d_hidden, "rating_reg": cfg.rating_reg, "dropout": cfg.baseline_dropout}
    if name == "Att2Seq":
        return {"d_emb": cfg.att2seq_d_emb, "d_hidden": cfg.att2seq_d_hidden, "n_layers": cfg.att2seq_layers,
                "dropout": cfg.baseline_dropout}
    if name == "NETE":
        return {"d_emb": cfg.nete_d_emb, "d_hidden": cfg.nete_d_hidden, "rating_reg": cfg.rating_reg, "dropout": cfg.baseline_dropout}
    if name == "PETER":
        return {"d_model": cfg.peter_d_model, "n_heads": cfg.peter_n_heads, "d_ff": cfg.peter_d_ff, "n_layers": cfg.peter_layers,
                "dropout": cfg.baseline_dropout, "rating_reg": cfg.rating_reg, "context_reg": cfg.context_reg,
                "max_len": cfg.max_words + 2}
    if name in MVAE_MODELS:
        return {"d_model": cfg.d_model, "n_layers": cfg.n_layers, "n_heads": cfg.n_heads, "n_rd": cfg.n_rd, "n_rs": cfg.n_rs,
                "beta": cfg.beta, "anneal_k": cfg.anneal_k, "anneal_a0": float(max(cfg.anneal_a0, 0)),
                "dropout": cfg.dropout, "block_dropout": cfg.block_dropout, "max_len": cfg.max_words + 2}
    raise KeyError(f"Unknown generator {name!r}")


def build_generator(name: str, n_users: int, n_items: int, spec: TextSpec, cfg: MVAEConfig, split: int,
                    tuned: Mapping[str, Any] | None = None, anneal_a0: float | None = None):
    """Generator ``name`` from the registry, sized by ``cfg`` and overridden by ``tuned`` parameters.

    ``tuned`` keys are the registry search space's names; ``lr`` goes to the training settings, the
    rest to the constructor. ``anneal_a0`` (steps) replaces the config's a0 for the annealed variants.
    """
    tuned = dict(tuned or {})
    params = {**model_params(name, cfg), **{k: v for k, v in tuned.items() if k != "lr"}}
    if name == "PETER" and "d_model" in tuned:
        params["d_ff"] = 4 * int(tuned["d_model"])
    if name in MVAE_MODELS and anneal_a0 is not None:
        params["anneal_a0"] = float(anneal_a0)
    return registry.build(name, n_users=n_users, n_items=n_items, spec=spec,
                          training=training_settings(cfg, split, tuned.get("lr")), **params)


def n_parameters(model: Any) -> int:
    return int(sum(p.numel() for p in model.parameters()))


# ============================================================================ one split
def encode_split(exp: ExplanationData, split: int, cfg: MVAEConfig) -> tuple[dict[str, np.ndarray], Vocab, dict[str, EncodedSplit]]:
    """Rows, vocabulary (training words only) and encoded parts of split ``split``."""
    parts = split_rows(exp, split, cfg.seed)
    vocab = Vocab(exp.df["tokens"].iloc[parts["train"]].tolist(), cfg.vocab_size)
    return parts, vocab, {k: encode_part(exp, v, vocab, cfg.max_words) for k, v in parts.items()}


def anneal_start(cfg: MVAEConfig, nokl: Mapping[str, Any] | None, steps_per_epoch: int) -> float:
    """Eq. 11's ``a0`` in steps: the config's value, or (``anneal_a0 = -1``, Sec. 4.4) half the steps
    MVAE-NoKL of the same split needed to reach its best validation epoch; 0 without a NoKL run."""
    if cfg.anneal_a0 >= 0:
        return float(cfg.anneal_a0)
    if nokl is None:
        return 0.0
    return 0.5 * nokl["curve"]["best_epoch"] * steps_per_epoch


def seeded_generator(name: str, n_users: int, n_items: int, spec: TextSpec, cfg: MVAEConfig, split: int,
                     tuned: Mapping[str, Any] | None, a0: float | None) -> Any:
    """Generator ``name`` for split ``split``, built after seeding torch and numpy with ``cfg.seed + split``
    (so that a unit and a diagnostic of the same split start from the same weights)."""
    from ...device import set_seed

    set_seed(cfg.seed + split)
    return build_generator(name, n_users, n_items, spec, cfg, split, tuned, anneal_a0=a0)


def neural_unit(name: str, n_users: int, n_items: int, spec: TextSpec, enc: Mapping[str, EncodedSplit], cfg: MVAEConfig,
                split: int, tuned: Mapping[str, Any] | None, a0: float | None) -> dict[str, Any]:
    """One (split, generator) unit: train on the split's training part, write for its test part."""
    model = seeded_generator(name, n_users, n_items, spec, cfg, split, tuned, a0)
    model.fit(enc["train"], enc["valid"])
    return {"hypotheses": [s.split() for s in model.generate(enc["test"])], "curve": model.curve.as_dict(),
            "train_nll": model.train_nll, "n_params": n_parameters(model), "anneal_a0": a0}


def retrieval_unit(name: str, enc: Mapping[str, EncodedSplit]) -> dict[str, Any]:
    """The retrieval baseline ``name`` on one split (no training loop, no curve)."""
    model = registry.build(name).fit(enc["train"], enc["valid"])
    return {"hypotheses": [s.split() for s in model.generate(enc["test"])], "curve": {}, "train_nll": [], "n_params": 0}


def run_split(exp: ExplanationData, split: int, cfg: MVAEConfig, store: UnitStore,
              tuned: Mapping[str, Mapping[str, Any]] | None = None, executor: str = "serial",
              address: str | None = None) -> dict[str, Any]:
    """Train and evaluate every model on split ``split``; one UnitStore unit per model.

    Returns ``{"split", "test_rows", "train_rows", "n_valid", "vocab_size", "references",
    "models": {name: {"hypotheses", "curve", "train_nll", "n_params", "metrics"}}, "crashed": {name: error}}``
    (``curve``: the :class:`~xrec_core.training.LearningCurve` as a dict; empty for the retrieval
    baselines). A model that raises is left out of ``models`` and named in ``crashed`` (its unit is
    not stored, so a rerun tries it again); the claims naming it become untestable.
    """
    return run_splits(exp, [split], cfg, store, tuned, executor=executor, address=address)[0][0]


def run_splits(exp: ExplanationData, splits: Sequence[int], cfg: MVAEConfig, store: UnitStore,
               tuned: Mapping[str, Mapping[str, Any]] | None = None, *, with_fig4: bool = False,
               executor: str = "serial", address: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """:func:`run_split` of every split in ``splits`` (and, ``with_fig4``, its :func:`figure4`), with every
    unit sent to ``executor`` at once (:func:`xrec_core.executor.run_units`).

    An annealed variant whose a0 comes from MVAE-NoKL of the same split (``anneal_a0 = -1``) runs
    after that unit, in a second batch.
    """
    from ...executor import Unit, run_units, unit_resources

    tuned = tuned or {}
    resources = unit_resources(cfg.n_threads, cfg.device)
    names = [*RETRIEVALS, *cfg.model_list]
    prepared = {s: encode_split(exp, s, cfg) for s in splits}
    keys: dict[tuple[int, str], str] = {}

    def unit(s: int, name: str, a0: float | None) -> Unit:
        key = keys[s, name] = unit_key(s, name, tuned.get(name)) + ("" if a0 is None else f"@a0={a0:g}")
        _, vocab, enc = prepared[s]
        if name in RETRIEVALS:
            return Unit(key, retrieval_unit, (name, enc), resources)
        return Unit(key, neural_unit, (name, exp.n_users, exp.n_items, vocab.spec, enc, cfg, s, tuned.get(name), a0),
                    resources)

    def after_nokl(name: str) -> bool:
        """Eq. 11's a0 of ``name`` is read from the NoKL unit run before it: it is part of the unit's key."""
        return (name in ANNEALED and cfg.anneal_a0 < 0 and "MVAE-NoKL" in names
                and names.index("MVAE-NoKL") < names.index(name))

    first = [unit(s, n, anneal_start(cfg, None, 0) if n in ANNEALED else None)
             for s in splits for n in names if not after_nokl(n)]
    fig4 = [Unit(f"split{s}/fig4", figure4, (exp, s, cfg), resources) for s in splits] if with_fig4 else []
    run = run_units(store, first + fig4, executor=executor, address=address, errors="collect")
    results: dict[str, Any] = dict(run.results)
    failed: dict[str, str] = dict(run.failed)
    if any(u.key in failed for u in fig4):
        raise RuntimeError(f"Fig. 4 failed: {next(failed[u.key] for u in fig4 if u.key in failed)}")
    second = []
    for s in splits:
        steps_per_epoch = math.ceil(len(prepared[s][2]["train"]) / cfg.batch_size)
        nokl = results.get(keys.get((s, "MVAE-NoKL"), ""))
        second += [unit(s, n, anneal_start(cfg, nokl, steps_per_epoch)) for n in names if after_nokl(n)]
    if second:
        run = run_units(store, second, executor=executor, address=address, errors="collect")
        results.update(run.results)
        failed.update(run.failed)
    out = []
    for s in splits:
        models = {n: results[keys[s, n]] for n in names if keys[s, n] in results}
        crashed = {n: failed[keys[s, n]][:300] for n in names if keys[s, n] in failed}
        for name, error in crashed.items():
            log.error("split %d: %s crashed: %s", s, name, error)
        out.append(_evaluate_split(exp, s, cfg, store, prepared[s], models, crashed))
    return out, [results[u.key] for u in fig4]


def _evaluate_split(exp: ExplanationData, split: int, cfg: MVAEConfig, store: UnitStore,
                    prepared: tuple[dict[str, np.ndarray], Vocab, dict[str, EncodedSplit]], results: dict[str, Any],
                    crashed: dict[str, str]) -> dict[str, Any]:
    """The metrics of every model that finished on ``split`` (METEOR once for all of them: one JVM)."""
    parts, vocab, enc = prepared
    refs = enc["test"].tokens
    names = list(results)
    pairs_idx = np.arange(len(refs))
    if cfg.meteor_max_pairs and len(refs) > cfg.meteor_max_pairs:
        pairs_idx = np.sort(np.random.default_rng(cfg.seed + split).choice(len(refs), cfg.meteor_max_pairs, replace=False))
    met = store.run(f"split{split}/METEOR/{'+'.join(names)}", lambda: tm.meteor_segments(
        [refs[k] for _ in names for k in pairs_idx], [_nonempty(results[n]["hypotheses"][k]) for n in names for k in pairs_idx]).tolist())
    met = np.asarray(met).reshape(len(names), len(pairs_idx))
    feats = exp.df["feature"].iloc[parts["test"]].tolist()
    for j, name in enumerate(names):
        hyps = [_nonempty(h) for h in results[name]["hypotheses"]]
        m = tm.text_metrics(refs, hyps, with_meteor=False)
        m["METEOR"] = float(met[j].mean())
        m.update(tm.explainability_metrics(hyps, feats, exp.features))
        results[name]["metrics"] = m
    return {"split": split, "test_rows": parts["test"].tolist(), "train_rows": parts["train"].tolist(),
            "n_valid": len(parts["valid"]), "vocab_size": vocab.spec.vocab_size, "references": refs, "models": results,
            "crashed": crashed}


def unit_key(split: int, name: str, tuned: Mapping[str, Any] | None) -> str:
    """``split<k>/<model>``, plus a digest of the tuned parameters when they replace the config's values."""
    if not tuned:
        return f"split{split}/{name}"
    import hashlib
    import json

    digest = hashlib.sha256(json.dumps(dict(tuned), sort_keys=True).encode()).hexdigest()[:10]
    return f"split{split}/{name}@{digest}"


def _nonempty(tokens: Sequence[str]) -> list[str]:
    """The metrics need a token; an empty output is scored as ``"."`` (and fails the health check)."""
    return list(tokens) if tokens else ["."]


def run_all(exp: ExplanationData, cfg: MVAEConfig, store: UnitStore,
            tuned: Mapping[str, Mapping[str, Any]] | None = None, executor: str = "serial",
            address: str | None = None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Every split's results and every split's Fig. 4 experiment (the notebook's one call); ``executor`` /
    ``address``: where the units run (:func:`xrec_core.executor.run_units`)."""
    return run_splits(exp, range(cfg.n_splits), cfg, store, tuned, with_fig4=True, executor=executor, address=address)


# ============================================================================ Fig. 4 and Fig. 5 helpers
def count_bin(counts: np.ndarray) -> np.ndarray:
    """Index of each count's bin in :data:`COUNT_BIN_EDGES` (the last bin is open)."""
    return np.searchsorted(np.asarray(COUNT_BIN_EDGES), np.asarray(counts), side="right") - 1


def binned_by_count(counts: np.ndarray, values: np.ndarray) -> list[float]:
    """Mean of ``values`` in each count bin (NaN for an empty bin)."""
    idx = count_bin(counts)
    return [float(values[idx == b].mean()) if np.any(idx == b) else float("nan") for b in range(len(COUNT_BIN_EDGES))]


def normalized_cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity mapped to [0, 1] by ``(cos + 1) / 2``."""
    cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-12)
    return (cos + 1.0) / 2.0


def binned_mean(x: np.ndarray, y: np.ndarray, n_bins: int) -> dict[str, list[float]]:
    """Sort by ``x``, cut into ``n_bins`` equal-count bins; mean x and mean/95%-CI of y per bin (Fig. 4's 80 bins)."""
    order = np.argsort(x, kind="stable")
    xs, ys, lo, hi = [], [], [], []
    for chunk in np.array_split(order, min(n_bins, len(order))):
        xs.append(float(x[chunk].mean()))
        m = float(y[chunk].mean())
        half = 1.96 * float(y[chunk].std(ddof=1) / np.sqrt(len(chunk))) if len(chunk) > 1 else 0.0
        ys.append(m)
        lo.append(m - half)
        hi.append(m + half)
    return {"x": xs, "y": ys, "lo": lo, "hi": hi}


def figure4(exp: ExplanationData, split: int, cfg: MVAEConfig) -> dict[str, Any]:
    """Sec. 4.5 on split ``split``: duplicate half of the examples (fresh user/item ids for the copies),
    train the plain VAE (early stopping on a 10% validation part of the duplicated data), and relate
    the normalized cosine of each user's two embeddings to the user's number of training examples.
    """
    from scipy.stats import spearmanr

    from ...data.splits import random_split
    from ...device import set_seed
    from ...models.mvae import PlainVAE

    set_seed(cfg.seed + split)
    dup, _ = duplicate_half(exp, cfg.seed + split)
    parts = random_split(dup.df["user_idx"].to_numpy(), dup.df["item_idx"].to_numpy(), seed=cfg.seed + split,
                         ratios=(0.9, 0.1, 0.0))
    vocab = Vocab(dup.df["tokens"].iloc[parts["train"]].tolist(), cfg.vocab_size)
    train, valid = (encode_part(dup, parts[k], vocab, cfg.max_words) for k in ("train", "valid"))
    model = PlainVAE(dup.n_users, dup.n_items, vocab.spec, d_emb=cfg.fig4_d, d_hidden=2 * cfg.fig4_d, d_latent=cfg.fig4_latent,
                     dropout=cfg.baseline_dropout, training=training_settings(cfg, split))
    model.fit(train, valid)
    user_ids = dup.df.drop_duplicates("user_idx").set_index("user")["user_idx"]
    counts = Counter(dup.df["user"].iloc[parts["train"]])
    orig = [u for u in user_ids.index if not str(u).startswith("copy::")]
    emb = model.user_emb.weight.detach().cpu().numpy()
    sim = normalized_cosine(emb[user_ids.loc[orig].to_numpy()], emb[user_ids.loc[["copy::" + str(u) for u in orig]].to_numpy()])
    n = np.array([counts[u] for u in orig], dtype=float)  # training examples of the original copy
    return {"binned": binned_mean(n, sim, cfg.fig4_bins), "by_count_bin": binned_by_count(n, sim),
            "spearman": float(spearmanr(n, sim).statistic), "n_users": len(orig), "curve": model.curve.as_dict()}


def per_user_gains(exp: ExplanationData, split: Mapping[str, Any], winner: str = "MVAE", other: str = "PETER",
                   max_count: int = 10) -> dict[str, Any]:
    """Fig. 5 on one split: sentence BLEU-1 and ROUGE-L of ``winner`` and ``other`` per test pair, and the
    mean gain ``winner - other`` in each user-count bin (:data:`COUNT_BIN_EDGES`)."""
    users = exp.df["user_idx"].to_numpy()
    train_count = Counter(users[split["train_rows"]])
    counts = np.array([train_count[u] for u in users[split["test_rows"]]])
    out: dict[str, Any] = {"count": np.minimum(counts, max_count).tolist()}
    for metric, fn in (("BLEU-1", tm.bleu1_per_pair), ("ROUGE-L", lambda r, h: tm.rouge_per_pair(r, h, "rougeL"))):
        per = {name: np.asarray(fn(split["references"], [_nonempty(h) for h in split["models"][name]["hypotheses"]]))
               for name in (winner, other)}
        out[metric] = {name: v.tolist() for name, v in per.items()}
        out[f"{metric} gain by count bin"] = binned_by_count(counts, per[winner] - per[other])
    return out
