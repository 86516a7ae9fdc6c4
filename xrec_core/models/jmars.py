"""JMARS (Diao, Qiu, Wu, Smola, Jiang & Wang, KDD 2014) -- documented as left out of this book.

Docs
----
JMARS, "Jointly Modeling Aspects, Ratings and Sentiments for movie recommendation", is one of the
MT paper's rating baselines (Table 2). It is a large probabilistic graphical model: every user
and item has aspect-interest and aspect-quality vectors; a review's overall rating is a
combination of latent per-aspect ratings built from those vectors and collaborative-filtering
factors; every word of the review is drawn from one of five switched language models
(background, sentiment-neutral aspect words, aspect-specific sentiment words whose polarity
depends on the latent aspect rating, item-specific words, ...); and the whole is fitted by a
Gibbs-EM loop that alternates collapsed Gibbs sampling of per-word aspect/sentiment assignments
with gradient steps on the rating-side parameters. No maintained Python implementation exists
(neither cornac nor any package in this environment ships it), the authors' code was never
released, and the paper leaves several pieces needed to rebuild it exactly unspecified (the
sentiment seed lexicon, the number of aspects per domain, the hyper-parameter priors and the
sampler schedule). A re-implementation from the paper alone would be a new model that only
bears JMARS's name, so the chapter reports the MT paper's published JMARS numbers for reference
and does not claim to reproduce them; the other rating baselines (PMF, HFT, CTR, ConvMF+) and
the simple baselines run on the same folds.
"""
