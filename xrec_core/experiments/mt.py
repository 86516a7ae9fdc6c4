"""MT chapter (paper 000, Lu, Dong & Smyth, RecSys 2018): config, 10-fold protocol, Tables 2-4,
Figure 3, the Sec. 4.3 shuffled-label test and the Sec. 4.4 examples.

Protocol (Sec. 4): the reviews are split into ``n_folds`` (10) folds; for every fold the other
folds train and the fold tests. A fold's vocabulary, word2vec vectors, user/item review
documents and the tf-idf corpus (N, df of Table 4) come from its training reviews only. Test
reviews whose user or item has no training review are dropped (every model needs a
document or a vector for both). Metrics: MSE (Table 2), perplexity over words + EOS (Table 3),
tf-idf cosine between the generated and the real review (Table 4), averaged over folds and
compared across folds with paired t-tests (``scipy.stats.ttest_rel``), as the paper's p < 0.05.

Our additions, said in the chapter: the simple baselines of issue 9 (global mean, user+item
biases, biased MF tuned on a validation split carved from the training folds); ``folds_run``
lets a CPU run evaluate the first folds of the 10-fold split only (the split itself is the
10-fold one); the paper gives no hyper-parameters, so every size below is our choice.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from ..config import ConfigError, ExperimentConfig
from ..metrics.language import tfidf_cosine
from ..metrics.rating import mse
from ..paths import results_root, units_root
from ..plots import save_figure
from ..records import Claim, MetricRow, RunRecorder, UnitStore

log = logging.getLogger(__name__)

PAPER_KEY = "mt"
#: rating models of Table 2 (paper order) and the simple baselines of issue 9.
RATING_BASELINES = ("PMF", "HFT", "CTR", "ConvMF+")
#: JMARS is left out (see :mod:`xrec_core.models.jmars`): its published numbers are shown for reference only.
MT_RATING = ("MT-encoder", "MT-decoder", "MT")
SIMPLE_BASELINES = ("Global mean", "User+item bias", "Biased MF (tuned)")
#: explanation models of Tables 3-4 (Opinosis has no perplexity).
LM_BASELINES = ("N-gram", "Skip-gram", "LSTM", "GCN-U", "GCN-I", "GCN-P")
MT_TEXT = ("MT-U", "MT-I", "MT-P")
PAPER_DATASETS = ("yelp2013", "yelp2014", "amazon2014-electronics", "amazon2014-videogames", "amazon2014-grocery")
#: our stand-in data is compared with the paper's Amazon Electronics column (Amazon 5-core, and
#: the dataset of the Sec. 4.3 numbers).
STAND_IN_FOR = {"amazon2014-instruments": "amazon2014-electronics", "amazon2018-allbeauty": "amazon2014-electronics",
                "amazon2018-giftcards": "amazon2014-electronics"}


@dataclass
class MTConfig(ExperimentConfig):
    """MT protocol and model settings. The paper states the protocol (10-fold CV) but no sizes or
    learning rates; the values below are our choices for its ``paper`` scale (a GPU run)."""

    dataset: str = "amazon2014-instruments"
    # protocol
    n_folds: int = 10
    folds_run: int = 10
    max_reviews: int = 0  # keep the first N reviews of the file (0 = all); smoke scale only
    max_review_len: int = 60  # words kept per review
    min_word_freq: int = 2
    max_vocab: int = 20000
    valid_frac: float = 0.1  # validation share of the training folds for the simple baselines
    # MT (Sec. 3)
    n_factors: int = 32
    emb_dim: int = 100
    hidden: int = 128
    disc_entity_dim: int = 16
    disc_filters: int = 64
    lambda_u: float = 1.0
    lambda_v: float = 1.0
    lambda_grid: tuple[float, ...] = (1.0, 3.0, 10.0)  # lambda_U = lambda_V tuned per fold on the validation split
    lambda_text: float = 1.0
    n_epochs: int = 20
    t_steps: int = 200
    g_steps: int = 10
    d_steps: int = 20
    final_sweeps: int = 5
    batch_size: int = 64
    doc_sample: int = 10
    n_rollouts: int = 8
    rollout_stride: int = 1
    gen_max_len: int = 40
    lr: float = 1e-3
    d_lr: float = 1e-3
    w2v_epochs: int = 5
    ablations: bool = True
    finished_only: bool = False  # assemble the record from finished units only (a run out of time)
    # evaluation extras (fold 0)
    fig3_steps: int = 200
    fig3_eval_every: int = 10
    n_examples: int = 5
    # baselines
    rating_baselines: tuple[str, ...] = RATING_BASELINES
    lm_baselines: tuple[str, ...] = LM_BASELINES
    opinosis: bool = True
    lm_epochs: int = 10
    lm_emb_dim: int = 100
    lm_hidden: int = 128
    topic_k: int = 32
    baseline_epochs: int = 20

    SCALES: ClassVar[dict[str, dict[str, Any]]] = {
        "smoke": dict(folds_run=2, max_reviews=600, max_review_len=20, min_word_freq=2, max_vocab=800, n_factors=8,
                      emb_dim=16, hidden=24, disc_filters=8, n_epochs=2, t_steps=8, g_steps=1, d_steps=2,
                      final_sweeps=3, batch_size=32, doc_sample=3, n_rollouts=1, rollout_stride=3, gen_max_len=12, w2v_epochs=1,
                      fig3_steps=6, fig3_eval_every=2, n_examples=3, lm_epochs=1, lm_emb_dim=16, lm_hidden=24,
                      topic_k=4, baseline_epochs=3),
        "full": dict(folds_run=10, max_review_len=30, min_word_freq=3, max_vocab=3000, n_factors=16, emb_dim=32,
                     hidden=48, disc_filters=16, n_epochs=5, t_steps=50, g_steps=2, d_steps=3, batch_size=64, lr=5e-3,
                     doc_sample=4, n_rollouts=1, rollout_stride=5, gen_max_len=25, w2v_epochs=2, fig3_steps=60, fig3_eval_every=5,
                     lm_epochs=2, lm_emb_dim=32, lm_hidden=48, topic_k=8, baseline_epochs=8),
        "paper": {},
    }
    REQUIRES: ClassVar[tuple[str, ...]] = ("rating", "text")

    def validate(self) -> None:
        super().validate()
        if self.n_folds < 2 or not 1 <= self.folds_run <= self.n_folds:
            raise ConfigError(f"need n_folds >= 2 and 1 <= folds_run <= n_folds, got {self.n_folds}, {self.folds_run}")
        if self.n_factors % 2:
            raise ConfigError(f"n_factors must be even (bi-GRU halves), got {self.n_factors}")
        unknown = sorted(set(self.rating_baselines) - set(RATING_BASELINES)) + sorted(set(self.lm_baselines) - set(LM_BASELINES))
        if unknown:
            raise ConfigError(f"Unknown baseline(s) {unknown}; valid: {', '.join(RATING_BASELINES + LM_BASELINES)}")

    @property
    def paper_dataset(self) -> str:
        """The paper dataset our numbers are compared with ("" for a user's data: no comparison)."""
        return self.dataset if self.dataset in PAPER_DATASETS else STAND_IN_FOR.get(self.dataset, "")


# ---------------------------------------------------------------------------------- data
@dataclass
class MTCorpus:
    """Every review of a dataset with integer user/item ids, tokens and the 10-fold split."""

    df: pd.DataFrame
    users: np.ndarray
    items: np.ndarray
    ratings: np.ndarray
    tokens: list[list[str]]
    folds: list[np.ndarray]  # test indices of each fold
    files: list[Path] = field(default_factory=list)

    @property
    def n_users(self) -> int:
        return int(self.users.max()) + 1

    @property
    def n_items(self) -> int:
        return int(self.items.max()) + 1


def load_corpus(cfg: MTConfig) -> MTCorpus:
    """Load, index and tokenize the reviews of ``cfg.dataset`` and draw the ``n_folds`` split."""
    from ..data import dataset_files, load_reviews

    data_dir = cfg.data_dir or None
    df = load_reviews(cfg.dataset, data_dir=data_dir)
    return corpus_from_frame(df, cfg, list(dataset_files(cfg.dataset, data_dir=data_dir)))


def corpus_from_frame(df: pd.DataFrame, cfg: MTConfig, files: Sequence[Path] = ()) -> MTCorpus:
    """Index, tokenize and split a review frame (``user, item, rating, text`` columns)."""
    from ..data.splits import kfold
    from ..data.text import tokenize

    missing = {"user", "item", "rating", "text"} - set(df.columns)
    if missing:
        raise ValueError(f"review frame lacks column(s) {sorted(missing)}")
    if cfg.max_reviews:
        df = df.iloc[: cfg.max_reviews]
    df = df.reset_index(drop=True)
    if len(df) < cfg.n_folds:
        raise ValueError(f"{len(df)} reviews cannot be split into {cfg.n_folds} folds")
    users = pd.factorize(df["user"])[0].astype(np.int64)
    items = pd.factorize(df["item"])[0].astype(np.int64)
    tokens = [list(tokenize(t))[: cfg.max_review_len] for t in df["text"].astype(str)]
    folds = [np.asarray(test, dtype=np.int64) for _, test in _folds(kfold(len(df), cfg.n_folds, cfg.seed))]
    return MTCorpus(df, users, items, df["rating"].to_numpy(float), tokens, folds, list(files))


def _folds(split) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train, test) index pairs from :func:`xrec_core.data.splits.kfold`."""
    return [(np.asarray(a), np.asarray(b)) for a, b in split]


def dataset_table(corpus: MTCorpus) -> pd.DataFrame:
    """Table-1 style statistics of the data the run used, plus the share of reviews whose
    (user, text) repeats an earlier review (Amazon 2018 files list one review once per product
    variant; such copies land on both sides of a fold and flatter every model)."""
    from ..data.stats import dataset_stats

    stats = dataset_stats(corpus.df)
    stats["duplicate (user, text) %"] = 100.0 * float(corpus.df.duplicated(["user", "text"]).mean())
    return stats


@dataclass
class FoldData:
    """One fold: train/test indices, the fold's vocabulary and the reviews as tensors."""

    k: int
    train: np.ndarray
    test: np.ndarray
    valid: np.ndarray  # part of ``train`` held out for tuning the simple baselines
    vocab: Any
    itos: list[str]
    tensors: Any  # xrec_core.models.mt.ReviewTensors


def fold_data(corpus: MTCorpus, k: int, cfg: MTConfig) -> FoldData:
    """Build fold ``k``: training vocabulary, padded token ids, test rows with known user and item."""
    from ..data.text import Vocabulary
    from ..models.mt import ReviewTensors

    test = corpus.folds[k]
    train = np.setdiff1d(np.arange(len(corpus.tokens)), test)
    seen_u, seen_i = np.zeros(corpus.n_users, bool), np.zeros(corpus.n_items, bool)
    seen_u[corpus.users[train]] = True
    seen_i[corpus.items[train]] = True
    test = test[seen_u[corpus.users[test]] & seen_i[corpus.items[test]]]
    rng = np.random.default_rng(cfg.seed + k)
    valid = np.sort(rng.choice(train, max(1, int(round(cfg.valid_frac * len(train)))), replace=False))
    vocab = Vocabulary.build([corpus.tokens[r] for r in train], min_freq=cfg.min_word_freq, max_size=cfg.max_vocab)
    itos = vocab_tokens(vocab)
    pad, bos, eos = (int(vocab.encode([t])[0]) for t in ("<PAD>", "<BOS>", "<EOS>"))
    tok = np.full((len(corpus.tokens), cfg.max_review_len + 1), pad, dtype=np.int64)
    for r, words in enumerate(corpus.tokens):
        ids = list(vocab.encode(words))
        tok[r, : len(ids)] = ids
        tok[r, len(ids)] = eos
    tensors = ReviewTensors(tok, corpus.users, corpus.items, corpus.ratings, corpus.n_users, corpus.n_items,
                            len(vocab), pad, bos, eos)
    return FoldData(k, train, test, valid, vocab, itos, tensors)


def vocab_tokens(vocab) -> list[str]:
    """Token string of every id of a :class:`~xrec_core.data.text.Vocabulary`."""
    return [str(t) for t in vocab.itos]


def decode(ids: Sequence[int], itos: list[str], eos_id: int, pad_id: int) -> list[str]:
    """Words of a token-id row, stopping at EOS/PAD."""
    out = []
    for i in ids:
        if i in (eos_id, pad_id):
            break
        out.append(itos[int(i)])
    return out


# ---------------------------------------------------------------------------------- models
def tune_lambda(cfg: MTConfig, fold: FoldData) -> float:
    """lambda_U = lambda_V of Eq. 10 picked from ``cfg.lambda_grid`` by the validation MSE of plain
    ALS (zero text features) fitted on the rest of the training folds; ``cfg.lambda_u`` if the grid
    is empty. (The paper does not report its lambdas.)"""
    from ..models.mt import ContextAwareMF

    if not cfg.lambda_grid:
        return cfg.lambda_u
    t = fold.tensors
    fit = np.setdiff1d(fold.train, fold.valid)
    scores = {}
    for lam in cfg.lambda_grid:
        m = ContextAwareMF(cfg.n_factors, lam, lam, seed=cfg.seed).fit(t.users[fit], t.items[fit], t.ratings[fit],
                                                                       t.n_users, t.n_items, n_sweeps=10)
        scores[lam] = mse(t.ratings[fold.valid], m.predict(t.users[fold.valid], t.items[fold.valid]))
    return float(min(scores, key=scores.get))


def make_mt(cfg: MTConfig, fold: FoldData, corpus: MTCorpus, variant: str = "full", pretrained=None,
            lam: float | None = None):
    """The MT model (or an ablation) with the config's sizes (``lam`` overrides lambda_U = lambda_V)."""
    from ..device import pick_device
    from ..models.mt import MultiTaskModel

    t = fold.tensors
    decoders = ("U", "I", "P") if variant == "full" else ("P",)
    return MultiTaskModel(
        t.n_users, t.n_items, t.vocab_size, pad_id=t.pad_id, bos_id=t.bos_id, eos_id=t.eos_id, variant=variant,
        decoders=decoders, n_factors=cfg.n_factors, emb_dim=cfg.emb_dim, hidden=cfg.hidden,
        disc_entity_dim=cfg.disc_entity_dim, disc_filters=cfg.disc_filters, lambda_u=cfg.lambda_u if lam is None else lam,
        lambda_v=cfg.lambda_v if lam is None else lam, lambda_text=cfg.lambda_text, n_epochs=cfg.n_epochs, t_steps=cfg.t_steps,
        g_steps=cfg.g_steps, d_steps=cfg.d_steps, final_sweeps=cfg.final_sweeps, batch_size=cfg.batch_size,
        doc_sample=cfg.doc_sample, n_rollouts=cfg.n_rollouts, rollout_stride=cfg.rollout_stride,
        max_len=cfg.gen_max_len, lr=cfg.lr, d_lr=cfg.d_lr,
        pretrained=pretrained, seed=cfg.seed + fold.k, device=pick_device(cfg.device))


def _pretrained(cfg: MTConfig, fold: FoldData, corpus: MTCorpus) -> np.ndarray:
    from ..models.mt import word2vec_matrix

    return word2vec_matrix([corpus.tokens[r] for r in fold.train], fold.itos, cfg.emb_dim, seed=cfg.seed + fold.k,
                           epochs=cfg.w2v_epochs)


def run_mt_fold(cfg: MTConfig, corpus: MTCorpus, fold: FoldData, with_extras: bool, lam: float | None = None) -> dict[str, Any]:
    """Train MT on one fold; MSE, perplexity and tf-idf of MT-U/I/P, the Sec. 4.3 accuracies and,
    on the first fold (``with_extras``), Figure 3 and generated examples."""
    t = fold.tensors
    model = make_mt(cfg, fold, corpus, "full", _pretrained(cfg, fold, corpus), lam)
    model.fit(t, fold.train)
    test = fold.test
    out: dict[str, Any] = {"MSE": {"MT": mse(t.ratings[test], model.predict(t.users[test], t.items[test]))},
                           "perplexity": {}, "tf-idf": {}, "history": model.history}
    corpus_docs = [corpus.tokens[r] for r in fold.train]
    refs = [corpus.tokens[r] for r in test]
    generated = {}
    for name in model.decoder_names:
        out["perplexity"][f"MT-{name}"] = model.perplexity(name, test)
        gen = model.generate(name, t.users[test], t.items[test], greedy=False)
        generated[name] = [decode(g, fold.itos, t.eos_id, t.pad_id) for g in gen]
        out["tf-idf"][f"MT-{name}"] = float(np.mean(tfidf_cosine(generated[name], refs, corpus_docs)))
    out["shuffled"] = {"user discriminator": model.shuffled_label_accuracy("U", test, seed=cfg.seed),
                       "item discriminator": model.shuffled_label_accuracy("I", test, seed=cfg.seed)}
    if with_extras:
        out["fig3"] = {name: model.discriminator_learning_curve(name, test, cfg.fig3_steps, cfg.fig3_eval_every,
                                                                seed=cfg.seed)
                       for name in model.decoder_names}
        pick = np.random.default_rng(cfg.seed).choice(len(test), min(cfg.n_examples, len(test)), replace=False)
        out["examples"] = [{"user": str(corpus.df["user"].iat[test[p]]), "item": str(corpus.df["item"].iat[test[p]]),
                            "rating": float(t.ratings[test[p]]),
                            "predicted rating": float(model.predict(t.users[test[p:p + 1]], t.items[test[p:p + 1]])[0]),
                            "ground truth": " ".join(refs[p]),
                            **{f"MT-{n}": " ".join(generated[n][p]) for n in model.decoder_names}}
                           for p in sorted(pick)]
    return out


def run_ablation_fold(cfg: MTConfig, corpus: MTCorpus, fold: FoldData, variant: str, lam: float | None = None) -> float:
    """Test MSE of MT-encoder (``no_encoder``) or MT-decoder (``no_decoder``) on one fold."""
    t = fold.tensors
    pre = _pretrained(cfg, fold, corpus) if variant == "no_decoder" else None
    model = make_mt(cfg, fold, corpus, variant, pre, lam).fit(t, fold.train)
    return mse(t.ratings[fold.test], model.predict(t.users[fold.test], t.items[fold.test]))


def _bow(corpus: MTCorpus, fold: FoldData, rows: np.ndarray, owners: np.ndarray, n: int):
    """Bag of words (n, V) of every user's or item's training reviews (for HFT/CTR)."""
    import scipy.sparse as sp

    t = fold.tensors
    r_idx, c_idx = [], []
    for r in rows:
        ids = t.tokens[r][(t.tokens[r] != t.pad_id) & (t.tokens[r] != t.eos_id)]
        r_idx.extend([owners[r]] * len(ids))
        c_idx.extend(ids.tolist())
    return sp.csr_matrix((np.ones(len(r_idx)), (r_idx, c_idx)), shape=(n, t.vocab_size))


MODULE_OF = {"PMF": "xrec_core.models.rating_baselines", "simple": "xrec_core.models.rating_baselines",
             "HFT": "xrec_core.models.hft", "CTR": "xrec_core.models.ctr", "ConvMF+": "xrec_core.models.convmf",
             "N-gram": "xrec_core.models.ngram_lm", "Skip-gram": "xrec_core.models.skipgram_lm",
             "LSTM": "xrec_core.models.lstm_lm", "GCN-U": "xrec_core.models.gcn", "GCN-I": "xrec_core.models.gcn",
             "GCN-P": "xrec_core.models.gcn", "Opinosis": "xrec_core.models.opinosis"}


def available(name: str) -> bool:
    """Whether the module implementing baseline ``name`` is importable in this checkout."""
    import importlib.util

    return importlib.util.find_spec(MODULE_OF[name]) is not None


def run_simple_baselines_fold(cfg: MTConfig, fold: FoldData) -> dict[str, float]:
    """Test MSE of the issue-9 simple baselines; biased MF is tuned on the fold's validation split."""
    from ..models import rating_baselines as rb

    t = fold.tensors
    tr, te = fold.train, fold.test
    u, i, r = t.users, t.items, t.ratings
    kw = dict(n_users=t.n_users, n_items=t.n_items)
    fit = np.setdiff1d(tr, fold.valid)
    out = {"Global mean": mse(r[te], rb.GlobalMean().fit(u[tr], i[tr], r[tr], **kw).predict(u[te], i[te])),
           "User+item bias": mse(r[te], rb.UserItemBias().fit(u[tr], i[tr], r[tr], **kw).predict(u[te], i[te]))}
    tuned = rb.tune_biased_mf(train=(u[fit], i[fit], r[fit]), valid=(u[fold.valid], i[fold.valid], r[fold.valid]),
                              seed=cfg.seed + fold.k, **kw)
    params = tuned[1] if isinstance(tuned, tuple) else tuned.get_params()
    mf = rb.BiasedMF(**params).fit(u[tr], i[tr], r[tr], **kw)  # refit the chosen setting on all training folds
    out["Biased MF (tuned)"] = mse(r[te], mf.predict(u[te], i[te]))
    return out


def run_rating_baseline_fold(cfg: MTConfig, corpus: MTCorpus, fold: FoldData, name: str) -> float:
    """Test MSE of one Table-2 baseline on one fold."""
    t = fold.tensors
    tr, te = fold.train, fold.test
    u, i, r = t.users, t.items, t.ratings
    nu, ni = t.n_users, t.n_items
    seed = cfg.seed + fold.k
    if name == "PMF":
        from ..models.rating_baselines import PMF

        m = PMF(seed=seed).fit(u[tr], i[tr], r[tr], n_users=nu, n_items=ni)  # its module's defaults (k=10)
    elif name == "HFT":
        from ..models.hft import HFT

        m = HFT(k=cfg.topic_k, seed=seed).fit(u[tr], i[tr], r[tr], _bow(corpus, fold, tr, i, ni), n_users=nu, n_items=ni)
    elif name == "CTR":
        from ..models.ctr import CTR

        m = CTR(k=cfg.topic_k, seed=seed).fit_ratings(u[tr], i[tr], r[tr], _bow(corpus, fold, tr, i, ni), nu, ni)
    elif name == "ConvMF+":
        from ..models.convmf import ConvMFPlus

        docs: list[list[int]] = [[] for _ in range(ni)]
        for row in tr:
            ids = t.tokens[row]
            docs[i[row]].extend(ids[(ids != t.pad_id) & (ids != t.eos_id)].tolist())
        m = ConvMFPlus(emb_dim=cfg.lm_emb_dim, epochs=cfg.baseline_epochs, w2v_epochs=cfg.w2v_epochs,
                       device=cfg.device, seed=seed)
        # ConvMF reads the first ``max_len`` words of an item document; cutting the documents here
        # keeps its word2vec pre-training on the same words (it sizes its table from them)
        m.fit(u[tr], i[tr], r[tr], [d[: m.max_len] for d in docs], nu, ni)
    else:
        raise ValueError(f"Unknown rating baseline {name!r}")
    return mse(r[te], m.predict(u[te], i[te]))


def run_text_baseline_fold(cfg: MTConfig, corpus: MTCorpus, fold: FoldData, name: str) -> dict[str, float]:
    """Perplexity and tf-idf of one Table 3-4 baseline on one fold (Opinosis: tf-idf only)."""
    from ..data.text import tokenize
    from ..device import pick_device

    t = fold.tensors
    tr, te = fold.train, fold.test
    train_docs = [corpus.tokens[r] for r in tr]
    refs = [corpus.tokens[r] for r in te]
    seed = cfg.seed + fold.k
    if name == "Opinosis":
        from ..models.opinosis import Opinosis

        summarizer = Opinosis()
        item_text: dict[int, list[str]] = {}
        for r in tr:
            item_text.setdefault(int(t.items[r]), []).append(str(corpus.df["text"].iat[r]))
        summaries = {j: tokenize(summarizer.summarize(item_text[j], max_words=cfg.gen_max_len))
                     for j in set(t.items[te].tolist())}
        return {"tf-idf": float(np.mean(tfidf_cosine([summaries[int(j)] for j in t.items[te]], refs, train_docs)))}
    train_kw = dict(epochs=cfg.lm_epochs, device=str(pick_device(cfg.device)), seed=seed)
    if name == "N-gram":
        from ..models.ngram_lm import InterpolatedNgramLM

        m = InterpolatedNgramLM(fold.vocab, n=3, seed=seed)
    elif name == "Skip-gram":
        from ..models.skipgram_lm import SkipGramLM

        m = SkipGramLM(fold.vocab, dim=cfg.lm_emb_dim, w2v_epochs=cfg.w2v_epochs, **train_kw)
    elif name == "LSTM":
        from ..models.lstm_lm import LSTMLM

        m = LSTMLM(fold.vocab, emb_dim=cfg.lm_emb_dim, hidden_dim=cfg.lm_hidden, **train_kw)
    elif name in ("GCN-U", "GCN-I", "GCN-P"):
        from ..models.gcn import GCN

        cond = {"GCN-U": "user", "GCN-I": "item", "GCN-P": "both"}[name]
        m = GCN(fold.vocab, condition=cond, cond_dim=cfg.n_factors, emb_dim=cfg.lm_emb_dim,
                hidden_dim=cfg.lm_hidden, **train_kw)
    else:
        raise ValueError(f"Unknown explanation baseline {name!r}")
    m.fit(train_docs, users=t.users[tr], items=t.items[tr])
    ppl = float(m.perplexity(refs, users=t.users[te], items=t.items[te]))
    gen = m.generate(users=t.users[te], items=t.items[te], max_len=cfg.gen_max_len, seed=seed)
    return {"perplexity": ppl, "tf-idf": float(np.mean(tfidf_cosine(gen, refs, train_docs)))}


# ---------------------------------------------------------------------------------- protocol
def units_dir(cfg: MTConfig) -> Path:
    """Where finished units go: ``results/mt/units/<scale>__<dataset>`` (see :func:`xrec_core.paths.units_root`)."""
    return units_root(cfg.results_dir, PAPER_KEY, cfg.scale, cfg.dataset)


def figures_dir(cfg: MTConfig) -> Path:
    return results_root(cfg.results_dir) / PAPER_KEY / "figures" / f"{cfg.scale}__{cfg.dataset}"


class UnitNotFinished(LookupError):
    """A unit that ``finished_only`` asked not to compute."""


def run_protocol(cfg: MTConfig, corpus: MTCorpus | None = None, progress: bool = True,
                 folds: Sequence[int] | None = None) -> dict[str, Any]:
    """Every fold x model group, resumable (one :class:`UnitStore` unit per fold and group).

    ``folds`` picks fold indices to run (default: the first ``cfg.folds_run``); separate processes
    can work on different folds of one run, sharing the finished units.
    """
    from ..progress import tqdm

    from ..device import set_seed, set_threads

    set_threads(cfg.n_threads)
    corpus = load_corpus(cfg) if corpus is None else corpus
    store = UnitStore(units_dir(cfg), unit_config(cfg))
    done: list[dict[str, Any]] = []
    missing: set[str] = set()
    failed: dict[str, str] = {}
    unfinished: list[str] = []
    for k in tqdm(range(cfg.folds_run) if folds is None else folds, desc=f"MT folds ({cfg.dataset})", disable=not progress):
        fold = fold_data(corpus, k, cfg)

        def unit(key: str, fn):
            if cfg.finished_only and not store.done(f"fold{k}/{key}"):
                raise UnitNotFinished(f"fold{k}/{key}")

            def compute():
                set_seed(cfg.seed + k)
                log.info("fold %d: %s", k, key)
                return fn()
            return store.run(f"fold{k}/{key}", compute)

        try:
            lam = unit("lambda", lambda: tune_lambda(cfg, fold))
            res = {"fold": k, "n_train": len(fold.train), "n_test": len(fold.test), "lambda": lam,
                   "MT": unit("MT", lambda: run_mt_fold(cfg, corpus, fold, with_extras=(k == 0), lam=lam))}
        except UnitNotFinished as exc:
            unfinished.append(str(exc))
            continue
        for variant, name in (("no_encoder", "MT-encoder"), ("no_decoder", "MT-decoder")):
            if cfg.ablations:
                try:
                    res[name] = unit(name, lambda: run_ablation_fold(cfg, corpus, fold, variant, lam))
                except UnitNotFinished as exc:
                    unfinished.append(str(exc))
        res["rating"], res["text"] = {}, {"perplexity": {}, "tf-idf": {}}

        def baseline(name: str, key: str, fn):
            """A baseline unit; a baseline that is absent or fails is reported, not fatal, and
            is retried by the next (resumed) run since nothing is stored for it."""
            if not available(name):
                missing.add(name)
                return None
            try:
                return unit(key, fn)
            except UnitNotFinished as exc:
                unfinished.append(str(exc))
                return None
            except Exception as exc:  # noqa: BLE001 - another chapter's model must not sink the MT run
                log.exception("baseline %s failed on fold %d", name, k)
                failed[name] = f"{type(exc).__name__}: {exc}"
                return None

        simple = baseline("simple", "simple-baselines", lambda: run_simple_baselines_fold(cfg, fold))
        res["rating"].update(simple or {})
        for name in cfg.rating_baselines:
            v = baseline(name, name, lambda: run_rating_baseline_fold(cfg, corpus, fold, name))
            if v is not None:
                res["rating"][name] = v
        for name in (*cfg.lm_baselines, *(("Opinosis",) if cfg.opinosis else ())):
            for metric, v in (baseline(name, name, lambda: run_text_baseline_fold(cfg, corpus, fold, name)) or {}).items():
                res["text"][metric][name] = v
        done.append(res)
    for name in sorted(missing):
        log.warning("baseline %s skipped: %s is not in this checkout", name, MODULE_OF[name])
    if not done:
        raise RuntimeError(f"no fold of {cfg.dataset} has a finished MT unit; run without finished_only first")
    return {"folds": done, "missing": sorted(missing), "failed": failed, "unfinished": unfinished}


#: config fields that select which units run but do not change any unit's result; they are left
#: out of the resumable units' fingerprint so that a rerun can add folds or baselines.
SELECTION_FIELDS = ("folds_run", "rating_baselines", "lm_baselines", "opinosis", "ablations", "n_threads",
                    "scale", "finished_only")


def unit_config(cfg: MTConfig) -> dict[str, Any]:
    """The config a unit's result depends on (``cfg`` minus :data:`SELECTION_FIELDS`)."""
    return {k: v for k, v in cfg.as_dict().items() if k not in SELECTION_FIELDS}


def per_fold(results: dict[str, Any]) -> dict[tuple[str, str], dict[int, float]]:
    """``{(metric, model): {fold: value}}`` of every number the protocol measured."""
    out: dict[tuple[str, str], dict[int, float]] = {}
    for f in results["folds"]:
        vals: dict[tuple[str, str], float] = {("MSE", "MT"): f["MT"]["MSE"]["MT"]}
        for m in ("MT-encoder", "MT-decoder"):
            if m in f:
                vals[("MSE", m)] = f[m]
        vals.update({("MSE", m): v for m, v in f["rating"].items()})
        for metric in ("perplexity", "tf-idf"):
            vals.update({(metric, m): v for m, v in f["MT"][metric].items()})
            vals.update({(metric, m): v for m, v in f["text"][metric].items()})
        vals.update({("accuracy", m): v for m, v in f["MT"]["shuffled"].items()})
        for key, v in vals.items():
            out.setdefault(key, {})[int(f["fold"])] = float(v)
    return out


TABLE_OF = {"MSE": "Table 2", "perplexity": "Table 3", "tf-idf": "Table 4", "accuracy": "Sec. 4.3"}


def paired_test(a: Sequence[float], b: Sequence[float]) -> float:
    """Two-sided p-value of the paired t-test across folds (``scipy.stats.ttest_rel``); NaN if < 2 folds."""
    from scipy.stats import ttest_rel

    if len(a) < 2:
        return math.nan
    return float(ttest_rel(a, b).pvalue)


def _beats_all(vals: dict[tuple[str, str], dict[int, float]], metric: str, ours: str, others: Sequence[str],
               lower: bool) -> tuple[bool | None, str]:
    """Whether ``ours`` beats every model of ``others`` with p < 0.05 (paired t-test over the folds
    both were evaluated on), and the evidence string."""
    parts, ok = [], True
    present = [o for o in others if (metric, o) in vals]
    if (metric, ours) not in vals or not present:
        return None, "not measured"
    mine = vals[(metric, ours)]
    for o in present:
        theirs = vals[(metric, o)]
        common = sorted(set(mine) & set(theirs))
        a, b = [mine[k] for k in common], [theirs[k] for k in common]
        p = paired_test(a, b)
        better = np.mean(a) < np.mean(b) if lower else np.mean(a) > np.mean(b)
        ok &= bool(better and p < 0.05)
        folds = "" if len(common) == len(mine) else f", {len(common)} common folds"
        parts.append(f"{o}: {np.mean(b):.4g} vs {np.mean(a):.4g} (p={p:.3g}{folds})")
    return ok, f"{ours} {np.mean(list(mine.values())):.4g}; " + "; ".join(parts)


def record_results(recorder: RunRecorder, cfg: MTConfig, results: dict[str, Any]) -> None:
    """Metric rows (Tables 2-4, Sec. 4.3), the paper's claims, Figure-3 curves and the examples."""
    vals = per_fold(results)
    ds, paper_ds = cfg.dataset, cfg.paper_dataset
    recorder.add_table("fold coverage", [{"metric": metric, "model": model, "folds": sorted(by_fold)}
                                         for (metric, model), by_fold in vals.items()])
    for (metric, model), by_fold in vals.items():
        compare = None if model in SIMPLE_BASELINES else paper_ds or None
        v = [by_fold[k] for k in sorted(by_fold)]
        recorder.add_metric(MetricRow.from_values(TABLE_OF[metric], ds, model, metric, v, compare_to=compare,
                                                  higher_is_better=metric in ("tf-idf", "accuracy")))
    n = len(results["folds"])
    src = "Sec. 4.1"
    holds, ev = _beats_all(vals, "MSE", "MT", [m for m in RATING_BASELINES if m in cfg.rating_baselines], lower=True)
    recorder.add_claim(Claim("MT has a lower MSE than PMF, HFT, CTR and ConvMF+ (paired t-test p < 0.05; JMARS left out)",
                             src, holds, f"{n} folds; {ev}", ds))
    holds, ev = _beats_all(vals, "MSE", "MT", SIMPLE_BASELINES, lower=True)
    recorder.add_claim(Claim("MT has a lower MSE than the simple baselines (issue 9; p < 0.05)", "issue 9", holds,
                             f"{n} folds; {ev}", ds))
    holds, ev = _beats_all(vals, "MSE", "MT", ["MT-encoder", "MT-decoder"], lower=True)
    recorder.add_claim(Claim("Removing the encoder or the decoder increases the MSE", src, holds, f"{n} folds; {ev}", ds))
    holds, ev = _beats_all(vals, "perplexity", "MT-P", LM_BASELINES, lower=True)
    recorder.add_claim(Claim("MT-P has a lower perplexity than every baseline (p < 0.05)", "Sec. 4.2, Table 3",
                             holds, f"{n} folds; {ev}", ds))
    holds, ev = _beats_all(vals, "tf-idf", "MT-P", [*LM_BASELINES, "Opinosis"], lower=False)
    recorder.add_claim(Claim("MT-P has a higher tf-idf similarity than every baseline (p < 0.05)", "Sec. 4.2, Table 4",
                             holds, f"{n} folds; {ev}", ds))
    if ("perplexity", "MT-P") in vals:
        mt = {m: float(np.mean(list(vals[("perplexity", m)].values()))) for m in MT_TEXT if ("perplexity", m) in vals}
        recorder.add_claim(Claim("MT-P has the lowest perplexity of MT-U, MT-I, MT-P", "Sec. 4.2",
                                 min(mt, key=mt.get) == "MT-P", str({k: round(v, 3) for k, v in mt.items()}), ds))
    for who in ("user", "item"):
        acc = list(vals.get(("accuracy", f"{who} discriminator"), {}).values())
        if acc:
            p = paired_test(acc, [0.5] * len(acc)) if len(acc) > 1 else math.nan
            recorder.add_claim(Claim(f"The {who} discriminator tells shuffled labels apart well above chance (50%)",
                                     "Sec. 4.3", bool(np.mean(acc) > 0.5 and (p < 0.05 or math.isnan(p))),
                                     f"mean accuracy {np.mean(acc):.3f} over {len(acc)} folds (p vs 0.5 = {p:.3g})", ds))
    first = results["folds"][0]["MT"]
    for name, curve in first.get("fig3", {}).items():
        recorder.add_curve(f"Figure 3/MT-{name}", {"x": curve["step"], "y": curve["accuracy"], "label": f"MT-{name}",
                                                   "xlabel": "discriminator training step",
                                                   "ylabel": "held-out accuracy", "dataset": ds})
    if first.get("fig3"):
        rises = {n: c["accuracy"][-1] - c["accuracy"][0] for n, c in first["fig3"].items()}
        recorder.add_claim(Claim("A fresh discriminator is first fooled by the trained generator and learns to "
                                 "detect its samples over training (accuracy rises)", "Sec. 4.3, Figure 3",
                                 all(v > 0 for v in rises.values()),
                                 "accuracy gain first -> last step: " + ", ".join(f"MT-{k} {v:+.3f}" for k, v in rises.items()), ds))
    recorder.add_curve("MT training/fold0", {"x": [h["epoch"] for h in first["history"]],
                                             **{k: [h[k] for h in first["history"]] for k in ("mf_loss", "t_loss", "g_loss", "d_loss")}})
    if first.get("examples"):
        recorder.add_table("Sec. 4.4 examples", first["examples"])
    for name in results.get("missing", []):
        label = "the simple baselines" if name == "simple" else f"Baseline {name}"
        recorder.note(f"{label} did not run: module {MODULE_OF[name]} was not available in this checkout.")
    if results.get("unfinished"):
        recorder.note("Run assembled from finished units only (finished_only=True); these units had not "
                      "finished in the time available and are missing from the tables: "
                      + ", ".join(results["unfinished"]))
    for name, err in results.get("failed", {}).items():
        recorder.note(f"Baseline {name} failed and is missing from the tables: {err}")
    recorder.add_table("folds", [{"fold": f["fold"], "n_train": f["n_train"], "n_test": f["n_test"],
                                  "lambda_U = lambda_V": f["lambda"]} for f in results["folds"]])


def results_table(recorder: RunRecorder, metric: str) -> pd.DataFrame:
    """Models x (paper, ours mean, spread, gap) for one metric of the record, plus the paper's rows
    for models this run did not produce (JMARS), with ``ours`` empty."""
    from ..reference import load_reference, paper_vs_ours

    df = paper_vs_ours(recorder.as_dict())
    df = df[df["metric"] == metric]
    ref = load_reference()
    paper_ds = next((d for d in df["paper_dataset"] if d), "")
    extra = ref[(ref["paper"] == PAPER_KEY) & (ref["metric"] == metric) & (ref["dataset"] == paper_ds)
                & ~ref["model"].isin(df["model"])]
    extra = pd.DataFrame({"table": extra["table"], "dataset": recorder.dataset, "paper_dataset": paper_ds,
                          "model": extra["model"], "metric": metric, "paper_value": extra["value"],
                          "verdict": "not run here"})
    return pd.concat([df, extra], ignore_index=True) if len(extra) else df.reset_index(drop=True)


def plot_figure3(curves: dict[str, Any], path: Path | None = None):
    """Figure 3: discriminator accuracy over training steps against the fully trained generator."""
    import matplotlib.pyplot as plt

    f, ax = plt.subplots(figsize=(6, 3.5))
    for key, c in curves.items():
        if key.startswith("Figure 3/"):
            ax.plot(c["x"], c["y"], marker="o", ms=3, label=f"{c['label']} ({c.get('dataset', '')})")
    ax.axhline(0.5, color="grey", ls=":", lw=1)
    ax.set_xlabel("discriminator training step")
    ax.set_ylabel("held-out accuracy")
    ax.set_title("Figure 3: learning curve of the discriminator")
    ax.legend(fontsize=8)
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def plot_metric_bars(record: dict[str, Any], metric: str, path: Path | None = None):
    """Ours (mean +- std over folds) beside the paper's number for every model of one table."""
    import matplotlib.pyplot as plt

    from ..reference import paper_vs_ours

    df = paper_vs_ours(record)
    df = df[df["metric"] == metric]
    f, ax = plt.subplots(figsize=(max(5, 0.7 * len(df)), 3.5))
    x = np.arange(len(df))
    ax.bar(x - 0.2, df["ours"], 0.4, yerr=df["spread"].fillna(0), label=f"ours ({record['dataset']})", capsize=2)
    paper_ds = next((d for d in df["paper_dataset"] if d), "")
    ax.bar(x + 0.2, df["paper_value"], 0.4, label=f"paper ({paper_ds})")
    ax.set_xticks(x, df["model"], rotation=45, ha="right", fontsize=8)
    ax.set_ylabel(metric)
    if metric == "perplexity":
        ax.set_yscale("log")
    ax.set_title(f"{TABLE_OF[metric]}: {metric}")
    ax.legend(fontsize=8)
    f.tight_layout()
    if path is not None:
        save_figure(f, path)
    return f


def make_figures(recorder: RunRecorder, cfg: MTConfig) -> dict[str, Any]:
    """Draw Figure 3 and the Table 2-4 comparison bars, save them as PNG and record their paths."""
    out_dir = figures_dir(cfg)
    figs = {"Figure 3": plot_figure3(recorder.curves, out_dir / "figure3.png")}
    recorder.add_artifact("Figure 3", out_dir / "figure3.png")
    record = recorder.as_dict()
    for metric in ("MSE", "perplexity", "tf-idf"):
        path = out_dir / f"{TABLE_OF[metric].lower().replace(' ', '')}.png"
        figs[TABLE_OF[metric]] = plot_metric_bars(record, metric, path)
        recorder.add_artifact(TABLE_OF[metric], path)
    return figs


def examples_table(recorder: RunRecorder) -> pd.DataFrame:
    """Sec. 4.4: generated explanations beside the ground truth."""
    return pd.DataFrame(recorder.tables.get("Sec. 4.4 examples", []))


def describe_models(cfg: MTConfig) -> pd.DataFrame:
    """One row per model of Tables 2-4: the table, what it reads and the module implementing it."""
    rows = [
        ("Table 2", "MT", "ratings + user/item review documents (context-aware MF, Eqs. 10-12)", "xrec_core.models.mt"),
        ("Table 2", "MT-encoder", "MT with the document encoders replaced by an embedding lookup", "xrec_core.models.mt"),
        ("Table 2", "MT-decoder", "MT with the encoders only (no decoder / discriminator)", "xrec_core.models.mt"),
        ("Table 2", "PMF", "ratings", "xrec_core.models.rating_baselines"),
        ("Table 2", "HFT", "ratings + item review bag of words (topics)", "xrec_core.models.hft"),
        ("Table 2", "CTR", "ratings + item review bag of words (topics)", "xrec_core.models.ctr"),
        ("Table 2", "ConvMF+", "ratings + item review documents (CNN, word2vec init)", "xrec_core.models.convmf"),
        ("Table 2", "JMARS", "left out (no faithful implementation possible; see module)", "xrec_core.models.jmars"),
        *[("Table 2", m, "ratings (simple baseline, issue 9)", "xrec_core.models.rating_baselines") for m in SIMPLE_BASELINES],
        ("Tables 3-4", "MT-U / MT-I / MT-P", "decoder conditioned on U~, V~ or both", "xrec_core.models.mt"),
        ("Tables 3-4", "N-gram", "training reviews (interpolated uni/bi/trigram)", "xrec_core.models.ngram_lm"),
        ("Tables 3-4", "Skip-gram", "training reviews (log-linear skip-gram LM)", "xrec_core.models.skipgram_lm"),
        ("Tables 3-4", "LSTM", "training reviews (LSTM LM)", "xrec_core.models.lstm_lm"),
        ("Tables 3-4", "GCN-U / GCN-I / GCN-P", "training reviews + user/item vectors", "xrec_core.models.gcn"),
        ("Table 4", "Opinosis", "the item's training reviews (graph summarizer)", "xrec_core.models.opinosis"),
    ]
    df = pd.DataFrame(rows, columns=["table", "model", "reads", "module"])
    on = set(cfg.rating_baselines) | set(cfg.lm_baselines) | {"MT", "MT-U / MT-I / MT-P", *SIMPLE_BASELINES}
    on |= {"MT-encoder", "MT-decoder"} if cfg.ablations else set()
    on |= {"GCN-U / GCN-I / GCN-P"} if any(m.startswith("GCN") for m in cfg.lm_baselines) else set()
    on |= {"Opinosis"} if cfg.opinosis else set()
    df["run here"] = df["model"].isin(on)
    return df


def where_mt_loses(record: dict[str, Any]) -> pd.DataFrame:
    """Every baseline whose fold-mean beats MT (MSE) or MT-P (perplexity, tf-idf) in a run record,
    with the paired t-test p-value across folds: the chapter's plain statement of MT's losses."""
    rows = {(m["metric"], m["model"]): m for m in record.get("metrics", [])}
    out = []
    for metric, ours, lower in (("MSE", "MT", True), ("perplexity", "MT-P", True), ("tf-idf", "MT-P", False)):
        if (metric, ours) not in rows:
            continue
        a = rows[(metric, ours)]
        for (met, model), b in rows.items():
            if met != metric or model.startswith("MT"):
                continue
            better = b["value"] < a["value"] if lower else b["value"] > a["value"]
            if better:
                out.append({"dataset": record.get("dataset", ""), "table": TABLE_OF[metric], "metric": metric,
                            "MT model": ours, "MT": a["value"], "baseline": model, "baseline value": b["value"],
                            "p (paired t-test)": paired_test(a["values"], b["values"])
                            if len(a["values"]) == len(b["values"]) else math.nan})
    return pd.DataFrame(out, columns=["dataset", "table", "metric", "MT model", "MT", "baseline", "baseline value",
                                      "p (paired t-test)"])
