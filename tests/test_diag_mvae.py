"""The MVAE collapse diagnostic (experiments/mvae/diagnostics.py, benchmarks/diag_mvae.py) and its rendering in
the chapter (experiments.mvae.report.committed_mvae_diagnostic): each measure against an independent computation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.distributions import Normal, kl_divergence

from xrec_core.experiments.mvae import MVAEConfig
from xrec_core.experiments.mvae import diagnostics as diag
from xrec_core.experiments.mvae.protocol import build_generator, encode_split, neural_unit
from xrec_core.records import RECORD_SCHEMA_VERSION
from xrec_core.experiments.mvae.report import MVAE_DIAGNOSTIC, committed_mvae_diagnostic, mvae_diagnostic_table

from test_mvae_protocol import _explanations  # users and items with a sentence template each

torch.set_num_threads(1)
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data():
    exp = _explanations()
    cfg = MVAEConfig.from_scale("smoke", device="cpu", d_model=24, n_heads=2, n_rd=1, peter_d_model=24, peter_d_ff=48,
                                batch_size=32, max_epochs=2)
    _, vocab, enc = encode_split(exp, 0, cfg)
    return exp, cfg, vocab, enc


def _mvae(data, variant: str = "MVAE"):
    exp, cfg, vocab, _ = data
    torch.manual_seed(0)
    return build_generator(variant, exp.n_users, exp.n_items, vocab.spec, cfg, 0).eval()


# ============================================================================ the measures
def test_spread_is_the_mean_standard_deviation_over_pairs():
    assert diag.spread(np.array([[0.0, 0.0], [2.0, 4.0]])) == pytest.approx(1.5)  # std 1 and 2 over the two pairs
    x = np.random.default_rng(0).normal(size=(30, 2, 5))
    assert diag.spread(x) == pytest.approx(float(np.mean([np.std(x[:, a, b]) for a in range(2) for b in range(5)])))


def test_shuffled_conditioning_gives_every_sentence_another_pairs_ids(data):
    part = data[3]["valid"]
    perm = diag.derangement(len(part), seed=3)
    assert sorted(perm) == list(range(len(part))) and not np.any(perm == np.arange(len(part)))
    shuffled = diag.shuffled_conditioning(part, seed=3)
    assert torch.equal(shuffled.seq, part.seq) and shuffled.tokens == part.tokens
    for field in ("user", "item", "rating", "sentiment", "feature"):
        assert torch.equal(getattr(shuffled, field), getattr(part, field)[torch.as_tensor(perm)])


def test_a_constant_prefix_makes_shuffled_and_own_nll_equal(data):
    _, cfg, _, enc = data
    model = _mvae(data)
    varied = diag.probe(model, enc["valid"], cfg.batch_size, torch.device("cpu"), seed=1)
    assert abs(varied["nll_shuffled"] - varied["nll_own"]) > 1e-5 and varied["prefix_spread"] > 1e-3
    with torch.no_grad():  # every user, item and rating embedding the same vector: one prefix for every pair
        for emb in (model.user_emb, model.item_emb, model.rating_emb):
            emb.weight.copy_(emb.weight[:1].expand_as(emb.weight))
    constant = diag.probe(model, enc["valid"], cfg.batch_size, torch.device("cpu"), seed=1)
    assert constant["nll_shuffled"] == pytest.approx(constant["nll_own"], abs=1e-6)
    assert constant["prefix_spread"] < 1e-6 and max(constant["prior_mean_spread"]) < 1e-6


def test_latent_statistics_match_an_independent_computation(data):
    _, cfg, _, enc = data
    model = _mvae(data)
    stats = diag.latent_statistics(model, enc["valid"], 8, torch.device("cpu"))  # several batches
    whole = next(enc["valid"].batches(len(enc["valid"])))  # one batch of every pair
    with torch.no_grad():
        _, prior = model.prior_net(whole)
        post = model.recognition_net(whole)
    for j, ((mu_q, lv_q), (mu_p, lv_p)) in enumerate(zip(post, prior)):
        q = Normal(mu_q, (0.5 * lv_q).exp())
        assert stats["kl_posterior_prior"][j] == pytest.approx(
            float(kl_divergence(q, Normal(mu_p, (0.5 * lv_p).exp())).sum(-1).mean()), rel=1e-4)
        assert stats["kl_posterior_standard"][j] == pytest.approx(
            float(kl_divergence(q, Normal(torch.zeros_like(mu_q), torch.ones_like(mu_q))).sum(-1).mean()), rel=1e-4)
        assert stats["prior_mean_spread"][j] == pytest.approx(float(np.std(mu_p.numpy(), axis=0).mean()), rel=1e-4)
        assert stats["posterior_mean_spread"][j] == pytest.approx(float(np.std(mu_q.numpy(), axis=0).mean()), rel=1e-4)
    norn = diag.latent_statistics(_mvae(data, "MVAE-NoRN"), enc["valid"], 8, torch.device("cpu"))
    assert norn["kl_posterior_prior"] is None and len(norn["prior_mean_spread"]) == cfg.n_rs


def test_output_summary_counts_sentences():
    refs = [["the", "sound", "is", "great"]] * 4
    out = diag.output_summary([["great", "sound"], ["great", "sound"], [], ["the", "tone"]], refs)
    assert (out["test_pairs"], out["distinct"], out["empty"], out["top_sentence"]) == (4, 3, 1, "great sound")
    assert out["top_share"] == 0.5 and out["unique_sentence_ratio"] == 0.75 and 0 < out["BLEU-1"] < 100


# ============================================================================ the diagnostic
def test_probes_do_not_change_the_protocols_training(data):
    exp, cfg, vocab, enc = data
    result = diag.collapse_diagnostic(exp, cfg, 0, ["PETER", "MVAE"])
    fits = {f["model"]: f for f in result["fits"]}
    assert {"Retrieval (item medoid)", "Retrieval (user medoid)", "PETER", "MVAE"} == set(fits)
    for name in ("PETER", "MVAE"):
        unit = neural_unit(name, exp.n_users, exp.n_items, vocab.spec, enc, cfg, 0, None, 0.0 if name == "MVAE" else None)
        probes = [p for p in result["probes"] if p["model"] == name]
        assert [p["epoch"] for p in probes] == list(range(cfg.max_epochs + 1))
        # the validation NLL the trainer measured is the probe's own-conditioning NLL, epoch by epoch
        assert [p["nll_own"] for p in probes[1:]] == pytest.approx(unit["curve"]["valid"], rel=1e-6)
        assert fits[name]["curve"]["valid"] == pytest.approx(unit["curve"]["valid"], rel=1e-6)
        assert fits[name]["distinct"] == len({" ".join(h) for h in unit["hypotheses"]})
        assert probes[2]["steps"] == 2 * fits[name]["steps_per_epoch"]
    assert fits["MVAE"]["anneal_a0"] == 0.0 and fits["PETER"]["anneal_a0"] is None


# ============================================================================ the chapter's rendering
def _record() -> dict:
    fits = [
        {"model": "Retrieval (item medoid)", "test_pairs": 680, "distinct": 300, "unique_sentence_ratio": 300 / 680,
         "empty": 0, "top_sentence": "a b", "top_share": 0.05, "BLEU-1": 15.9, "BLEU-4": 0.8, "ROUGE-L-F": 12.0},
        {"model": "PETER", "epochs": 10, "best_epoch": 5, "best_valid_nll": 4.85, "stopped_early": True,
         "steps_per_epoch": 86, "anneal_a0": None, "test_pairs": 680, "distinct": 231, "unique_sentence_ratio": 231 / 680,
         "empty": 0, "top_sentence": "this is a great price", "top_share": 0.12, "BLEU-1": 8.7, "BLEU-4": 0.99,
         "ROUGE-L-F": 13.4},
        {"model": "MVAE", "epochs": 12, "best_epoch": 7, "best_valid_nll": 4.82, "stopped_early": True,
         "steps_per_epoch": 86, "anneal_a0": 0.0, "test_pairs": 680, "distinct": 1, "unique_sentence_ratio": 1 / 680,
         "empty": 0, "top_sentence": "this is a great little tuner", "top_share": 1.0, "BLEU-1": 6.4, "BLEU-4": 1.07,
         "ROUGE-L-F": 12.3},
    ]
    mvae = {"kl_posterior_prior": [0.011, 0.002, 0.001], "kl_posterior_standard": [0.5, 0.42, 0.3],
            "posterior_mean_spread": [6e-4, 5e-4, 4e-4], "prior_mean_spread": [0.016, 0.008, 0.005]}
    probes = [{"model": "PETER", "epoch": e, "steps": 86 * e, "nll_own": 5.0 - 0.02 * e, "nll_shuffled": 5.0} for e in range(11)]
    probes[5]["nll_own"], probes[5]["nll_shuffled"] = 4.86, 4.946
    probes += [{"model": "MVAE", "epoch": e, "steps": 86 * e, "nll_own": 5.771, "nll_shuffled": 5.771,
                "prefix_spread": {0: 0.16, 3: 0.004}.get(e, 0.008), **mvae} for e in range(13)]
    return {"schema": RECORD_SCHEMA_VERSION, "paper": MVAE_DIAGNOSTIC, "scale": "bench", "dataset": "amazon2014-instruments",
            "seed": 2024, "config": {"scale": "full", "n_threads": 1, "beta": 0.001},
            "code_version": {"git_commit": "0123456789abcdef", "git_dirty": False}, "benchmark": {"cpu_s": 600.0},
            "tables": {"split": [{"split": 0, "train": 5440, "valid": 680, "test": 680}], "fits": fits, "probes": probes}}


def test_the_chapter_renders_the_records_numbers(tmp_path):
    folder = tmp_path / MVAE_DIAGNOSTIC
    folder.mkdir()
    (folder / "diag_mvae__bench__amazon2014-instruments__seed2024.json").write_text(json.dumps(_record()))
    view = committed_mvae_diagnostic(root=tmp_path)
    text = view.markdown
    for expected in ("commit `0123456`", "10.0 CPU-minutes, one thread", "split 1 of amazon2014-instruments",
                     "5440 training, 680 validation and 680 test pairs",
                     "item medoid retrieval baseline scores BLEU-1 15.9, BLEU-4 0.80, ROUGE-L F1 12.0 with 300 distinct",
                     "**PETER** stops by patience after 10 epochs (860 updates; kept epoch 5, validation NLL 4.850 per token) "
                     "and writes 231 distinct sentences for 680 test pairs (unique-sentence ratio 0.34; BLEU-1 8.7, "
                     "BLEU-4 0.99, ROUGE-L F1 13.4)", "\"this is a great price\", covers 12% of them",
                     "writes 1 distinct sentence for 680 test pairs", "PETER 0.0860 nats per token (1.8% of 4.860)",
                     "MVAE 0.0000 nats per token", "spread of 0.16 over the validation pairs at initialisation, 0.008 "
                     "after 86 updates (lowest 0.004, after 258 updates) and 0.008 at its kept epoch", "KL(q_rec ‖ q_prior) is 0.011, 0.002, 0.001 nats per "
                     "scale and KL(q_rec ‖ N(0, I)) 0.5, 0.42, 0.3", "weighs at most 0.0012 nats per sentence"):
        assert expected in text, expected
    table = view.table.set_index(["model", "after"])
    assert list(table.index) == [("PETER", "initialisation"), ("PETER", "epoch 1 (86 steps)"), ("PETER", "epoch 2 (172 steps)"),
                                 ("PETER", "epoch 5 (430 steps), kept"), ("MVAE", "initialisation"),
                                 ("MVAE", "epoch 1 (86 steps)"), ("MVAE", "epoch 2 (172 steps)"),
                                 ("MVAE", "epoch 7 (602 steps), kept")]
    kept = table.loc[("MVAE", "epoch 7 (602 steps), kept")]
    assert kept["KL(q_rec ‖ q_prior) per scale"] == "0.011, 0.002, 0.001" and kept["spread of the decoder prefix"] == "0.008"
    assert table.loc[("PETER", "epoch 5 (430 steps), kept"), "NLL, another pair's"] == 4.946
    assert table.loc[("PETER", "initialisation"), "spread of prior means"] == ""
    assert view.figure is not None
    assert mvae_diagnostic_table(_record(), epochs=()).shape[0] == 2  # the kept epochs only


def test_without_a_record_the_chapter_says_so_in_one_line(tmp_path):
    view = committed_mvae_diagnostic(root=tmp_path)
    assert "\n" not in view.markdown and "No committed MVAE diagnostic record" in view.markdown
    assert view.table.empty and view.figure is None


@pytest.mark.real_data
def test_the_script_writes_a_record_at_a_tiny_size(tmp_path, data_dir):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]), "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "diag_mvae.py"), "--scale", "smoke", "--models",
                           "MVAE-NoRN", "-p", "max_epochs=1", "--results-dir", str(tmp_path)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    path = next((tmp_path / MVAE_DIAGNOSTIC).glob("*.json"))
    record = json.loads(path.read_text())
    assert record["config"]["max_epochs"] == 1 and record["config"]["split"] == 0
    assert record["data_files"] and record["benchmark"]["timed"][0]["label"] == "MVAE-NoRN"
    assert [p["epoch"] for p in record["tables"]["probes"]] == [0, 1]
    assert record["learning_curves"]["MVAE-NoRN"]["split 0"]["epochs"] == 1
    assert (path.parent / f"{path.stem}_probes.png").exists()
