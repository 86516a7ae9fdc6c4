"""MVAE parts and the baselines: closed-form KL, Eq. 11 schedule, Block (Eq. 1), shapes and learning."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.distributions import Independent, Normal, kl_divergence

from xrec_core.models.explain import NETE, NRT, PETER, Att2Seq, ExplanationBatch, MedoidRetrieval, TextSpec, TrainingSettings
from xrec_core.models.explain.common import SinusoidalPositions
from xrec_core.models.explain.peter import peter_mask
from xrec_core.models.mvae import MVAE, Block, PlainVAE, gaussian_kl, tkl, tkl_beta

torch.set_num_threads(1)
SPEC = TextSpec(vocab_size=40, pad_id=0, bos_id=2, eos_id=3, words=tuple(["<PAD>", "<UNK>", "<BOS>", "<EOS>"] + [f"w{k}" for k in range(4, 40)]))
TRAIN = TrainingSettings(lr=1e-2, warmup_steps=1, clip=5.0, lr_decay=0.8, decay_threshold=0.98, batch_size=4, max_epochs=3,
                         patience=2, max_words=9, seed=0, device="cpu")
MVAE_ARGS = dict(d_model=48, n_layers=2, n_heads=2, n_rd=2, n_rs=3, beta=1e-3, anneal_k=0.0025, anneal_a0=0.0, dropout=0.0,
                 block_dropout=0.0, max_len=24, variant="mvae", training=TRAIN)


def _mvae(**changes) -> MVAE:
    return MVAE(4, 3, SPEC, **{**MVAE_ARGS, **changes})


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
    m = _mvae(d_model=24, n_rd=1, beta=1e-3, anneal_k=0.01, anneal_a0=100)
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
    m = _mvae()
    h, dists = m.prior_net(_batch())
    assert [d[0].shape[-1] for d in dists] == [12, 6, 3]  # 96 -> 48 -> 24 -> (12, 6, 3)
    assert h.shape[-1] == 3
    _, d2 = _mvae(variant="nomlf").prior_net(_batch())
    assert [d is None for d in d2] == [True, True, False]
    norn = _mvae(variant="norn")
    assert not hasattr(norn, "recognition")
    assert norn.loss(_batch())["kl_prior"].item() == 0.0
    with pytest.raises(ValueError, match="divisible"):
        _mvae(d_model=50)
    with pytest.raises(ValueError, match="variant"):
        _mvae(variant="bogus")


def test_full_mvae_tkl_has_the_beta_term():
    torch.manual_seed(0)
    m = _mvae(beta=0.5, anneal_k=1.0, anneal_a0=-100)
    m.on_step(0)
    m.train()
    out = m.loss(_batch())
    assert out["beta"].item() == pytest.approx(0.5)
    assert out["kl_std"].item() > 0.0 and out["kl_prior"].item() > 0.0


def test_nokl_is_sec48_variant():
    """MVAE-NoKL (Sec. 4.8): z = mu_rec (deterministic in training) and MSE(mu_rec, mu_prior) in place of TKL."""
    torch.manual_seed(0)
    m = _mvae(variant="nokl")
    m.train()
    batch = _batch()
    with torch.no_grad():
        for _ in range(50):  # let the spectral-norm power iterations converge (each training forward runs one)
            m.loss(batch)
    torch.manual_seed(1)
    a = m.loss(batch)
    torch.manual_seed(2)
    b = m.loss(batch)
    assert a["loss"].item() == pytest.approx(b["loss"].item(), rel=1e-5)  # no sampling noise
    post = m.recognition_net(batch)
    _, prior = m.prior_net(batch)
    mse = sum((q[0] - p[0]).pow(2).mean(-1) for q, p in zip(post, prior))
    assert a["kl_prior"].item() == pytest.approx(mse.mean().item(), rel=1e-4)
    assert a["beta"].item() == 0.0 and a["kl_std"].item() == 0.0
    full = _mvae()
    full.load_state_dict(m.state_dict())  # same parameters as the full model: only the objective differs
    full.eval(), m.eval()
    assert torch.equal(full.decode(batch, 6), m.decode(batch, 6))


def test_sinusoidal_positions_and_input_scale():
    """PETER's input handling (authors' module.py): fixed sin/cos positions in [-1, 1], tokens scaled by sqrt(d)."""
    pe = SinusoidalPositions(6, 10)(10)
    assert pe.shape == (10, 6) and float(pe.abs().max()) <= 1.0
    assert pe[0].tolist() == pytest.approx([0.0, 1.0, 0.0, 1.0, 0.0, 1.0])
    assert float(pe[3, 0]) == pytest.approx(math.sin(3.0)) and float(pe[3, 3]) == pytest.approx(math.cos(3 / 10000 ** (2 / 6)))
    p = PETER(4, 3, SPEC, **PETER_ARGS)
    assert p.word_emb.weight.abs().max().item() <= 0.1 and p.out.weight.abs().max().item() <= 0.1
    assert p.out.bias.abs().max().item() == 0.0 and p.scale == pytest.approx(math.sqrt(32))
    assert not any("pos" in name for name, _ in p.named_parameters())  # positions are not learned


PETER_ARGS = dict(d_model=32, n_heads=2, d_ff=64, n_layers=2, dropout=0.0, rating_reg=0.1, context_reg=1.0, max_len=24, training=TRAIN)
ALL = [lambda: NRT(4, 3, SPEC, d_emb=16, d_hidden=32, rating_reg=0.1, dropout=0.0, training=TRAIN),
       lambda: Att2Seq(4, 3, SPEC, d_emb=16, d_hidden=32, n_layers=2, dropout=0.0, training=TRAIN),
       lambda: NETE(4, 3, SPEC, d_emb=16, d_hidden=32, rating_reg=0.1, dropout=0.0, training=TRAIN),
       lambda: PETER(4, 3, SPEC, **PETER_ARGS),
       lambda: _mvae(),
       lambda: PlainVAE(4, 3, SPEC, d_emb=16, d_hidden=32, d_latent=4, dropout=0.0, training=TRAIN)]


@pytest.mark.parametrize("make", ALL, ids=["NRT", "Att2Seq", "NETE", "PETER", "MVAE", "PlainVAE"])
def test_generators_learn_and_generate(make):
    torch.manual_seed(0)
    model = make()
    batch = _batch()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.eval()
    first = model.loss(batch)["nll"].item()
    model.train()
    for step in range(60):
        model.on_step(step)
        out = model.loss(batch)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    model.eval()
    last = model.loss(batch)["nll"].item()
    assert last < 0.5 * first  # memorises 6 sentences
    gen = model.decode(batch, 9)
    assert gen.shape[0] == 6 and gen.shape[1] <= 9
    assert torch.equal(gen, model.decode(batch, 9))  # greedy and deterministic in eval mode


class _Part:
    """A data part of one fixed batch (what ``fit``/``generate`` read)."""

    def __init__(self, batch: ExplanationBatch) -> None:
        self.batch = batch

    def __len__(self) -> int:
        return len(self.batch)

    def batches(self, batch_size, shuffle=False, seed=0):
        yield self.batch


def test_fit_trains_through_the_trainer_and_keeps_the_best_epoch():
    torch.manual_seed(0)
    model = NRT(4, 3, SPEC, d_emb=16, d_hidden=32, rating_reg=0.1, dropout=0.0,
                training=TrainingSettings(**{**TRAIN.__dict__, "max_epochs": 30, "patience": 2}))
    part = _Part(_batch())
    model.fit(part, _Part(_batch(seed=1)))
    c = model.curve
    assert c.stopped_early and c.epochs == c.best_epoch + 2  # patience 2 on a validation set it cannot learn
    assert c.valid[c.best_epoch - 1] == min(c.valid) and len(model.train_nll) == c.epochs
    assert c.train_loss[-1] < c.train_loss[0]
    texts = model.generate(part)
    assert len(texts) == 6 and all(isinstance(t, str) for t in texts)
    assert all(w.startswith("w") for t in texts for w in t.split())  # specials stripped


def test_summary_outputs_equal_the_full_encoder_and_its_gradients():
    """The recognition encoder's last layer runs for the two summary queries only: outputs and the
    gradients of every encoder weight equal those of the whole encoder's first two positions."""
    from xrec_core.models.mvae.model import summary_outputs

    torch.manual_seed(0)
    layer = torch.nn.TransformerEncoderLayer(16, 2, 64, 0.0, activation="gelu", batch_first=True)
    encoder = torch.nn.TransformerEncoder(layer, 3, enable_nested_tensor=False)
    x = torch.randn(5, 9, 16)
    pad = torch.zeros(5, 9, dtype=torch.bool)
    pad[1, 6:] = pad[3, 4:] = True
    weights = torch.randn(5, 2, 16)

    def outputs_and_grads(fn):
        encoder.zero_grad()
        out = fn()
        (out * weights).sum().backward()
        return out.detach(), [p.grad.clone() for p in encoder.parameters()]

    full, full_grads = outputs_and_grads(lambda: encoder(x, src_key_padding_mask=pad)[:, :2])
    fast, fast_grads = outputs_and_grads(lambda: summary_outputs(encoder, x, pad, 2))
    assert fast.shape == (5, 2, 16)
    torch.testing.assert_close(fast, full, atol=1e-6, rtol=1e-5)
    for a, b in zip(fast_grads, full_grads):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
    assert not torch.allclose(summary_outputs(encoder, x, pad, 2), encoder(x)[:, :2], atol=1e-3)  # the mask matters


def test_mvae_golden_validation_nll():
    """Golden values (CPU, seed 0, one thread): MVAE fitted for 3 epochs on the fixed batch."""
    from xrec_core.device import set_seed

    set_seed(0)
    model = _mvae(training=TrainingSettings(**{**TRAIN.__dict__, "max_epochs": 3, "patience": 3}))
    model.fit(_Part(_batch()), _Part(_batch(seed=1)))
    assert model.curve.valid == pytest.approx(GOLDEN_MVAE_VALID, abs=1e-6)
    assert model.train_nll == pytest.approx(GOLDEN_MVAE_TRAIN, abs=1e-6)


GOLDEN_MVAE_VALID = [3.504038095474243, 3.441549777984619, 3.5425026416778564]
GOLDEN_MVAE_TRAIN = [3.8569395542144775, 3.135650396347046, 2.7179408073425293]


def test_peter_mask():
    m = peter_mask(5, torch.device("cpu"))
    assert not m[0, 1] and not m[1, 0]  # user and item see each other
    assert m[1, 2] and m[2, 3] and not m[3, 2]  # words are causal
    assert not m[4, :5].any()


def test_retrieval_picks_item_medoid():
    sents = [["great", "sound"], ["great", "sound", "quality"], ["bad", "strap"], ["great", "tone"], ["cheap", "strap"]]
    r = MedoidRetrieval("item").fit_sentences([0, 0, 0, 1, 1], [1, 1, 1, 1, 0], sents)
    # item 0: overlaps (F1): s0-s1 0.8, s0-s2 0, s1-s2 0 -> s0 (1st of the tie with s1 by argmax order)
    assert r.predict([0], [1]) == [["great", "sound"]]
    assert r.predict([1], [0]) == [["cheap", "strap"]]
    assert r.predict([1], [1]) == [["great", "tone"]]
    with pytest.raises(ValueError):
        MedoidRetrieval().fit_sentences([], [], [])
    with pytest.raises(ValueError, match="by must be"):
        MedoidRetrieval("feature")


def test_user_retrieval_reads_the_users_explanations():
    from types import SimpleNamespace

    from xrec_core.experiments.mvae import RETRIEVAL, USER_RETRIEVAL
    from xrec_core.models import registry

    sents = [["nice", "strap"], ["nice", "strap"], ["loud", "amp"], ["warm", "tone"]]
    train = SimpleNamespace(user=[7, 7, 7, 8], item=[0, 1, 2, 0], sentiment=[1, 1, 1, 1], tokens=sents)
    test = SimpleNamespace(user=[7, 8, 9], item=[2, 1, 0], sentiment=[1, 1, 1])
    by_user = registry.build(USER_RETRIEVAL).fit(train)
    # user 7 repeats "nice strap" (F1 1 between the two, 0 to "loud amp"); user 8 has one; user 9 none: corpus medoid
    assert by_user.generate(test) == ["nice strap", "warm tone", "nice strap"]
    assert registry.build(RETRIEVAL).fit(train).generate(test) == ["loud amp", "nice strap", "nice strap"]


def test_registry_builds_every_model_of_the_tables():
    from xrec_core.experiments.mvae import MVAEConfig, NEURAL_MODELS, RETRIEVAL
    from xrec_core.experiments.mvae.protocol import build_generator
    from xrec_core.models import registry

    cfg = MVAEConfig.from_scale("smoke", device="cpu")
    for name in NEURAL_MODELS:  # Table 2 (NRT, Att2Seq, NETE, PETER, MVAE), Table 3 and Fig. 6 (NoKL, NoMLF, NoRN)
        model = build_generator(name, 4, 3, SPEC, cfg, split=0)
        assert registry.implements(model, registry.GENERATION), name
        assert model.training_settings.lr == cfg.lr and registry.entry(name).search_space, name
    tuned = build_generator("MVAE", 4, 3, SPEC, cfg, split=0, tuned={"lr": 1e-3, "d_model": 96, "beta": 0.01})
    assert (tuned.d_model, tuned.beta, tuned.training_settings.lr) == (96, 0.01, 1e-3)
    assert build_generator("PETER", 4, 3, SPEC, cfg, split=0, tuned={"d_model": 96}).transformer.layers[0].linear1.out_features == 384
    assert registry.implements(registry.build(RETRIEVAL), registry.GENERATION)
    assert {"lr", "dropout", "d_model", "beta"} <= set(registry.entry("MVAE-NoKL").search_space)
    assert {"rating_reg", "context_reg"} <= set(registry.entry("PETER").search_space)


def test_a_run_smaller_than_its_preset_says_so():
    from xrec_core.experiments.mvae import MVAEConfig, reduction_notes

    assert len(reduction_notes(MVAEConfig.from_scale("full"))) == 1  # the full preset's smaller sizes, stated
    notes = reduction_notes(MVAEConfig.from_scale("full", n_splits=3, models="MVAE,PETER"))
    assert notes[0].startswith("3 of the full preset's 5 random splits") and "NRT" in notes[1] and "MVAE,PETER" not in notes[1]
    assert "a0" in notes[2]
