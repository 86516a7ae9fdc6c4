"""MVAE parts and the baselines: closed-form KL, Eq. 11 schedule, Block (Eq. 1), shapes and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from xrec_core.models.explain import NETE, NRT, PETER, Att2Seq, ExplanationBatch, ItemMedoidRetrieval, TextSpec
from xrec_core.models.explain.peter import peter_mask
from xrec_core.models.mvae import MVAE, Block, PlainVAE, gaussian_kl, tkl, tkl_beta

torch.set_num_threads(1)
SPEC = TextSpec(vocab_size=40, pad_id=0, bos_id=2, eos_id=3)


def _batch(b: int = 6, t: int = 7, seed: int = 0) -> ExplanationBatch:
    g = torch.Generator().manual_seed(seed)
    words = torch.randint(4, SPEC.vocab_size, (b, t), generator=g)
    seq = torch.cat([torch.full((b, 1), SPEC.bos_id), words, torch.full((b, 1), SPEC.eos_id)], 1)
    seq[0, 5:] = SPEC.pad_id
    seq[0, 4] = SPEC.eos_id
    return ExplanationBatch(torch.arange(b) % 4, torch.arange(b) % 3, torch.rand(b, generator=g) * 4 + 1,
                            torch.arange(b) % 2, words[:, 0], seq)


def _normal(mu, logvar):
    return Independent(Normal(mu, (0.5 * logvar).exp()), 1)


def test_gaussian_kl_matches_torch_distributions():
    g = torch.Generator().manual_seed(1)
    mu1, lv1, mu2, lv2 = (torch.randn(5, 12, generator=g) for _ in range(4))
    expected = kl_divergence(_normal(mu1, lv1), _normal(mu2, lv2))
    assert torch.allclose(gaussian_kl(mu1, lv1, mu2, lv2), expected, atol=1e-5)
    std = kl_divergence(_normal(mu1, lv1), _normal(torch.zeros_like(mu1), torch.zeros_like(lv1)))
    assert torch.allclose(gaussian_kl(mu1, lv1), std, atol=1e-5)
    # hand formula, one dimension: KL(N(1, e^0) || N(0, 1)) = 0.5
    assert float(gaussian_kl(torch.ones(1, 1), torch.zeros(1, 1))) == pytest.approx(0.5)


def test_tkl_is_eq6():
    g = torch.Generator().manual_seed(2)
    mu_r, lv_r, mu_p, lv_p = (torch.randn(4, 6, generator=g) for _ in range(4))
    total, kp, ks = tkl(mu_r, lv_r, mu_p, lv_p, beta=0.3)
    q = _normal(mu_r, lv_r)
    exp_kp = kl_divergence(q, _normal(mu_p, lv_p))
    exp_ks = kl_divergence(q, _normal(torch.zeros_like(mu_r), torch.zeros_like(lv_r)))
    assert torch.allclose(kp, exp_kp, atol=1e-5) and torch.allclose(ks, exp_ks, atol=1e-5)
    assert torch.allclose(total, exp_kp + 0.3 * exp_ks, atol=1e-5)


@pytest.mark.parametrize("step", [0, 500, 1000, 1400, 5000])
def test_annealing_matches_eq11(step):
    beta, k, a0 = 1e-3, 0.0025, 1000.0
    assert tkl_beta(step, beta, k, a0) == pytest.approx(beta / (1 + np.exp(-k * (step - a0))), rel=1e-12)


def test_annealing_limits():
    assert tkl_beta(1000, 1e-3, 0.0025, 1000) == pytest.approx(5e-4)  # midpoint: beta / 2
    assert tkl_beta(10 ** 7, 1e-3, 0.0025, 0) == pytest.approx(1e-3)
    assert tkl_beta(0, 1e-3, 1.0, 10 ** 6) == 0.0  # no overflow far before a0


def test_mvae_beta_follows_schedule_through_on_step():
    m = MVAE(4, 3, SPEC, d_model=24, n_heads=2, n_rd=1, n_rs=3, beta=1e-3, anneal_k=0.01, anneal_a0=100)
    m.on_step(250)
    assert m.beta_now == pytest.approx(1e-3 / (1 + math.exp(-0.01 * 150)))


def test_block_residual_layernorm_and_spectral_norm():
    torch.manual_seed(0)
    blk = Block(16, 8, dropout=0.0)
    x = torch.randn(32, 16)
    for _ in range(30):  # power iterations converge in training mode
        y = blk(x)
    assert y.shape == (32, 8)
    blk.eval()
    for f in [*blk.transform, blk.out]:
        sigma = torch.linalg.matrix_norm(f.linear.weight.detach(), ord=2)
        assert float(sigma) == pytest.approx(1.0, abs=0.05)
    inner = blk.norm(blk.transform(x) + x)
    assert torch.allclose(inner.mean(-1), torch.zeros(32), atol=1e-5)  # LayerNorm of the residual (Eq. 1)
    assert torch.allclose(blk(x), blk.out(inner))


def test_mvae_scales_and_variants():
    m = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3)
    h, dists = m.prior_net(_batch())
    assert [d[0].shape[-1] for d in dists] == [12, 6, 3]  # 96 -> 48 -> 24 -> (12, 6, 3)
    assert h.shape[-1] == 3
    nomlf = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, variant="nomlf")
    _, d2 = nomlf.prior_net(_batch())
    assert [d is None for d in d2] == [True, True, False]
    norn = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, variant="norn")
    assert not hasattr(norn, "recognition")
    assert float(norn.loss(_batch())["kl_prior"]) == 0.0
    with pytest.raises(ValueError, match="divisible"):
        MVAE(4, 3, SPEC, d_model=50)
    with pytest.raises(ValueError, match="variant"):
        MVAE(4, 3, SPEC, d_model=48, n_rd=2, variant="bogus")


def test_nokl_drops_only_the_beta_term():
    torch.manual_seed(0)
    m = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, beta=0.5, anneal_k=1.0, anneal_a0=-100, dropout=0.0)
    torch.manual_seed(0)
    nokl = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, beta=0.5, anneal_k=1.0, anneal_a0=-100, dropout=0.0, variant="nokl")
    nokl.load_state_dict(m.state_dict())
    for mod in (m, nokl):
        mod.on_step(0)
    torch.manual_seed(5)
    a = m.loss(_batch())
    torch.manual_seed(5)
    b = nokl.loss(_batch())
    assert float(a["beta"]) == pytest.approx(0.5) and float(b["beta"]) == 0.0
    assert float(a["kl_std"]) == pytest.approx(float(b["kl_std"]), rel=1e-4)
    assert float(a["loss"] - b["loss"]) == pytest.approx(0.5 * float(a["kl_std"]), rel=1e-3)


def test_nokl_mse_is_sec48_variant():
    """Sec. 4.8's NoKL: z = mu_rec (deterministic in training) and MSE(mu_rec, mu_prior) in place of TKL."""
    torch.manual_seed(0)
    m = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, dropout=0.0, variant="nokl_mse")
    m.train()
    batch = _batch()
    torch.manual_seed(1)
    a = m.loss(batch)
    torch.manual_seed(2)
    b = m.loss(batch)
    assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-6)  # no sampling noise
    post = m.recognition_net(batch)
    _, prior = m.prior_net(batch)
    mse = sum((q[0] - p[0]).pow(2).mean(-1) for q, p in zip(post, prior))
    # rel 1e-3: every training-mode forward advances the spectral-norm power iteration a little
    assert float(a["kl_prior"]) == pytest.approx(float(mse.mean()), rel=1e-3)
    assert float(a["beta"]) == 0.0 and float(a["kl_std"]) == 0.0
    full = MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, dropout=0.0)
    full.load_state_dict(m.state_dict())  # same parameters as the full model: only the objective differs
    full.eval(), m.eval()
    assert torch.equal(full.generate(batch, max_len=6), m.generate(batch, max_len=6))


ALL = [lambda: NRT(4, 3, SPEC, d_emb=16, d_hidden=32), lambda: Att2Seq(4, 3, SPEC, d_emb=16, d_hidden=32),
       lambda: NETE(4, 3, SPEC, d_emb=16, d_hidden=32), lambda: PETER(4, 3, SPEC, d_model=32, d_ff=64),
       lambda: MVAE(4, 3, SPEC, d_model=48, n_heads=2, n_rd=2, n_rs=3, dropout=0.0),
       lambda: PlainVAE(4, 3, SPEC, d_emb=16, d_hidden=32)]


@pytest.mark.parametrize("make", ALL, ids=["NRT", "Att2Seq", "NETE", "PETER", "MVAE", "PlainVAE"])
def test_generators_learn_and_generate(make):
    torch.manual_seed(0)
    model = make()
    batch = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    first = float(model.loss(batch)["nll"])
    model.train()
    for step in range(60):
        model.on_step(step)
        out = model.loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    model.eval()
    last = float(model.loss(batch)["nll"])
    assert last < 0.5 * first  # memorises 6 sentences
    gen = model.generate(batch, max_len=9)
    assert gen.shape[0] == 6 and gen.shape[1] <= 9
    assert torch.equal(gen, model.generate(batch, max_len=9))  # greedy and deterministic in eval mode


def test_peter_mask():
    m = peter_mask(5, torch.device("cpu"))
    assert not m[0, 1] and not m[1, 0]  # user and item see each other
    assert m[1, 2] and m[2, 3] and not m[3, 2]  # words are causal
    assert not m[4, :5].any()


def test_retrieval_picks_item_medoid():
    sents = [["great", "sound"], ["great", "sound", "quality"], ["bad", "strap"], ["great", "tone"], ["cheap", "strap"]]
    r = ItemMedoidRetrieval().fit([0, 0, 0, 1, 1], [1, 1, 1, 1, 0], sents)
    # item 0: overlaps (F1): s0-s1 0.8, s0-s2 0, s1-s2 0 -> s0 (1st of the tie with s1 by argmax order)
    assert r.predict([0], [1]) == [["great", "sound"]]
    assert r.predict([1], [0]) == [["cheap", "strap"]]
    assert r.predict([1], [1]) == [["great", "tone"]]
    with pytest.raises(ValueError):
        ItemMedoidRetrieval().fit([], [], [])


def test_claims_need_significant_paired_wins_over_the_splits():
    from xrec_core.experiments.mvae import NEURAL_BASELINES, RETRIEVAL, TABLE2_METRICS, TABLE3_METRICS, claims
    from xrec_core.records import MetricRow

    rng = np.random.default_rng(0)

    def rows_for(table, metrics, model, level, noise=0.001):
        return [MetricRow.from_values(table, "d", model, m, level + noise * rng.standard_normal(4)) for m in metrics]

    rows = rows_for("Table 2", TABLE2_METRICS, "MVAE", 0.30)
    for b in NEURAL_BASELINES:
        rows += rows_for("Table 2", TABLE2_METRICS, b, 0.20)
    rows += rows_for("Table 2", TABLE2_METRICS, RETRIEVAL, 0.10)
    rows += rows_for("Table 3", TABLE3_METRICS, "MVAE", 0.30) + rows_for("Table 3", TABLE3_METRICS, "MVAE-NoKL", 0.29)
    # MVAE-NoMLF: a higher MVAE mean on every metric, but one split goes the other way: no significant win
    rows += [MetricRow.from_values("Table 3", "d", "MVAE-NoMLF", m, [0.10, 0.10, 0.10, 0.65]) for m in TABLE3_METRICS]
    verdicts = {c.claim: c for c in claims(rows, {}, [], None, "d")}
    assert verdicts["MVAE outperforms NRT, Att2Seq, NETE and PETER on every Table 2 metric"].holds is True
    assert verdicts["MVAE beats the simple item-medoid retrieval baseline (issue 9)"].holds is True
    assert verdicts["MVAE outperforms MVAE-NoKL on every Table 3 metric"].holds is True
    nomlf = verdicts["MVAE outperforms MVAE-NoMLF on every Table 3 metric"]
    assert nomlf.holds is False and "paired t-test p=" in nomlf.evidence


def test_a_run_smaller_than_its_preset_says_so():
    from xrec_core.experiments.mvae import MVAEConfig, reduction_notes

    assert reduction_notes(MVAEConfig.from_scale("full")) == []
    notes = reduction_notes(MVAEConfig.from_scale("full", n_splits=3, models="MVAE,PETER"))
    assert notes[0].startswith("3 of the full preset's 5 random splits") and "NRT" in notes[1] and "MVAE,PETER" not in notes[1]
