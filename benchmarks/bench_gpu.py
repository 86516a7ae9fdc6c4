"""The GPU check (issue 15): paper-size training steps of every neural model, then each chapter's smoke run, on one device.

Two parts, both written to one ``BenchRecorder`` record (``results/bench_gpu/...``):

* **steps**: each neural model of the five chapters, at the paper's sizes (the ``paper`` scale of
  its chapter's config) on synthetic batches, takes one warm-up step and then ``--steps`` timed
  training steps (forward, backward, optimizer). Each row gives examples (or tokens) per second,
  wall and CPU seconds per step, and the peak memory: ``torch.cuda.max_memory_allocated`` since
  the model was built on a GPU, the process's peak resident set so far on a CPU (monotonic over
  the run, so an upper bound there). Models: the GRU chapter's GRU and Embed text recommenders,
  the MT chapter's review decoder (MT-P's generator), the MVAE chapter's generators (NRT,
  Att2Seq, NETE, PETER and MVAE with its ablations), and the NAR chapter's scoring networks (NAR,
  CAR/CNR/CER's context network, neural VBPR, NCF) with the BPR loss. SEMAX's models need a
  review corpus; they run on the device in the chapter's smoke run below (and ``bench_semax.py``
  times their epochs on real data).
* **chapters** (``--chapters``): ``xrec run <paper> --scale smoke -p device=<device>`` for each
  paper, in a subprocess with a time limit; a row per chapter says whether it finished, its wall
  time and the CPU time of the run (children included). Needs the data folder (``XREC_DATA``).

``benchmarks/gpu.sh`` runs both on ``cuda`` and refuses without a CUDA device. On a CPU,
``--device cpu --tiny`` runs the steps at toy sizes in seconds (the smoke test does)::

    python benchmarks/bench_gpu.py --device cuda --chapters gru mt mvae nar semax
    python benchmarks/bench_gpu.py --device cpu --tiny
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _record import BenchRecorder, process_cpu_s  # noqa: E402

log = logging.getLogger("bench_gpu")

PAPERS = ("gru", "mt", "mvae", "nar", "semax")
MVAE_MODELS = ("NRT", "Att2Seq", "NETE", "PETER", "MVAE", "MVAE-NoMLF", "MVAE-NoRN")
NAR_NETS = ("NAR", "CAR", "VBPR", "NCF")  # CAR's context network is also CNR's and CER's


# ---------------------------------------------------------------------------------------------- timing
def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_steps(step: Callable[[], None], device: str, steps: int, warm_up: Callable[[], None] | None = None,
               calls: int | None = None) -> dict[str, Any]:
    """``warm_up()`` (default: one ``step()``), then ``calls`` timed calls of ``step`` (default ``steps``), counted as
    ``steps`` training steps: wall and CPU seconds per step, peak memory (MB)."""
    import torch

    (warm_up or step)()
    _sync(device)
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps if calls is None else calls):
        step()
    _sync(device)
    wall, cpu = (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps
    peak = (torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda")
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"step_wall_s": wall, "step_cpu_s": cpu, "peak_mb": peak, "peak_kind": "cuda max_memory_allocated"
            if device.startswith("cuda") else "process peak RSS so far"}


def _fresh_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _optimizer_step(loss: Any, opt: Any) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()


# ---------------------------------------------------------------------------------------------- models
def gru_steps(device: str, tiny: bool, steps: int) -> list[dict[str, Any]]:
    """The GRU chapter's text recommenders at the paper's K=200 (k_h1 400), 512 users per update."""
    from _gru import synthetic_text_data, text_recommender

    from xrec_core.device import set_seed

    set_seed(0)
    data = synthetic_text_data(tiny)
    k, k_h1, batch = (16, 16, 32) if tiny else (200, 400, 512)
    rows = []
    for encoder, name in (("gru", "GRU"), ("embed", "Embed")):
        _fresh_peak(device)
        # the recommender's own loop (sampling, encoding, backward, step): a fit of ``steps`` updates after a fit of one
        out = time_steps(
            lambda: text_recommender(encoder, k=k, k_h1=k_h1, batch_users=batch, updates=steps, device=device).fit(data),
            device, steps, calls=1,
            warm_up=lambda: text_recommender(encoder, k=k, k_h1=k_h1, batch_users=batch, updates=1, device=device).fit(data))
        rows.append({"chapter": "gru", "model": name, "unit": "examples", "per_step": 2 * batch, "sizes": f"K={k}, B={batch}",
                     **out})
    return rows


def mt_steps(device: str, tiny: bool, steps: int) -> list[dict[str, Any]]:
    """The MT chapter's review decoder (MT-P's generator) with the paper's vocabulary and hidden size."""
    import torch

    from xrec_core.experiments.mt import MTConfig
    from xrec_core.models.mt import ReviewDecoder, sequence_log_probs

    cfg = MTConfig.from_scale("paper")
    vocab, hidden, emb, batch, length = (300, 16, 8, 4, 6) if tiny else (cfg.max_vocab, cfg.hidden, cfg.emb_dim,
                                                                         cfg.batch_size, cfg.max_review_len)
    torch.manual_seed(0)
    _fresh_peak(device)
    dec = ReviewDecoder(vocab, emb, hidden, 2 * cfg.n_factors, banned_ids=(0, 2)).to(device)
    opt = torch.optim.Adam(dec.parameters(), lr=cfg.lr)
    cond = torch.randn(batch, 2 * cfg.n_factors, device=device)
    targets = torch.randint(4, vocab, (batch, length), device=device)

    def step() -> None:
        logp, mask = sequence_log_probs(dec, cond, targets, 2, 0, 3)
        _optimizer_step(-logp.sum() / mask.sum(), opt)

    out = time_steps(step, device, steps)
    return [{"chapter": "mt", "model": "MT-P decoder", "unit": "tokens", "per_step": batch * length,
             "sizes": f"V={vocab}, H={hidden}, B={batch}, T={length}", **out}]


def mvae_steps(device: str, tiny: bool, steps: int) -> list[dict[str, Any]]:
    """The MVAE chapter's generators at the paper config (d_model 768, vocabulary 20k, batch 128)."""
    import torch

    from xrec_core.experiments.mvae import MVAEConfig
    from xrec_core.experiments.mvae.protocol import build_generator
    from xrec_core.models.explain import ExplanationBatch, TextSpec

    cfg = MVAEConfig.from_scale("smoke" if tiny else "paper")
    vocab, batch, length = (300, 4, 5) if tiny else (cfg.vocab_size, cfg.batch_size, cfg.max_words)
    n_users, n_items = (50, 40) if tiny else (2000, 1000)
    spec = TextSpec(vocab, 0, 2, 3)
    g = torch.Generator().manual_seed(0)
    words = torch.randint(4, vocab, (batch, length), generator=g)
    seq = torch.cat([torch.full((batch, 1), 2), words, torch.full((batch, 1), 3)], 1)
    data = ExplanationBatch(torch.randint(0, n_users, (batch,), generator=g), torch.randint(0, n_items, (batch,), generator=g),
                            torch.rand(batch, generator=g) * 4 + 1, torch.randint(0, 2, (batch,), generator=g), words[:, 0],
                            seq).to(device)

    def one(name: str) -> dict[str, Any]:  # the model and its optimizer are freed on return (the next peak is its own)
        torch.manual_seed(0)
        _fresh_peak(device)
        model = build_generator(name, n_users, n_items, spec, cfg, split=0).to(device)
        model.train()
        opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr)
        count = {"step": 0}

        def step() -> None:
            model.on_step(count["step"])
            count["step"] += 1
            loss = model.loss(data)["loss"]
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.clip)
            opt.step()

        out = time_steps(step, device, steps)
        return {"chapter": "mvae", "model": name, "unit": "tokens", "per_step": batch * (length + 1),
                "sizes": f"V={vocab}, B={batch}, T={length + 1}", "parameters": sum(p.numel() for p in model.parameters()),
                **out}

    return [one(name) for name in MVAE_MODELS]


def nar_steps(device: str, tiny: bool, steps: int) -> list[dict[str, Any]]:
    """The NAR chapter's scoring networks at the paper's embeddings of 350, BPR loss on one batch of triples."""
    import torch

    from xrec_core.experiments.nar import NARConfig
    from xrec_core.models.nar.models import ContextNet, NARNet, NCFNet, ScoringState, VBPRNet, bpr_loss

    cfg = NARConfig.from_scale("paper")
    dim, batch = (8, 16) if tiny else (cfg.dim, cfg.batch_size)
    n_users, n_items, n_features = (50, 40, 20) if tiny else (20000, 10000, 500)
    nets = {"NAR": NARNet, "CAR": ContextNet, "VBPR": VBPRNet, "NCF": NCFNet}
    g = torch.Generator().manual_seed(0)
    u, i, j = (torch.randint(0, n, (batch,), generator=g).to(device) for n in (n_users, n_items, n_items))
    f_users = torch.rand(n_users, n_features, generator=g).to(device)
    f_items = torch.rand(n_items, n_features, generator=g).to(device)

    def one(name: str) -> dict[str, Any]:  # the network and its optimizer are freed on return
        torch.manual_seed(0)
        _fresh_peak(device)
        state = ScoringState(nets[name](n_users, n_items, n_features, dim), n_users, n_items, n_features,
                             cfg.item_bias).to(device)
        opt = torch.optim.Adam(state.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)

        def step() -> None:
            fu = f_users[u]
            _optimizer_step(bpr_loss(state(u, i, fu, f_items[i]), state(u, j, fu, f_items[j])), opt)

        out = time_steps(step, device, steps)
        return {"chapter": "nar", "model": name, "unit": "triples", "per_step": batch,
                "sizes": f"dim={dim}, B={batch}, P={n_features}", **out}

    return [one(name) for name in NAR_NETS]


STEP_BENCHES = {"gru": gru_steps, "mt": mt_steps, "mvae": mvae_steps, "nar": nar_steps}


# ---------------------------------------------------------------------------------------------- chapters
def run_chapter(paper: str, device: str, timeout_s: int, results_dir: Path, output_dir: Path,
                executor: str = "serial") -> dict[str, Any]:
    """``xrec run <paper> --scale smoke -p device=... --executor ...`` in a subprocess: finished or not, wall and CPU
    seconds (with ``ray``, the units run as Ray tasks asking for the device, as on a GPU cluster)."""
    cmd = [sys.executable, "-m", "xrec_core", "run", paper, "--scale", "smoke", "-p", f"device={device}",
           "--results-dir", str(results_dir), "--output-dir", str(output_dir), "--executor", executor]
    c0, t0 = process_cpu_s(), time.perf_counter()
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        status, tail = ("finished" if proc.returncode == 0 else f"failed (exit {proc.returncode})"), proc.stderr[-2000:]
    except subprocess.TimeoutExpired as exc:
        status, tail = f"timed out after {timeout_s} s", (exc.stderr or b"")[-2000:]
        tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
    wall, cpu = time.perf_counter() - t0, process_cpu_s() - c0
    return {"chapter": paper, "executor": executor, "status": status, "wall_s": wall, "cpu_s": cpu,
            "stderr_tail": "" if status == "finished" else tail}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model (after one warm-up)")
    parser.add_argument("--models", nargs="+", choices=list(STEP_BENCHES), default=list(STEP_BENCHES),
                        help="chapters whose models take paper-size steps")
    parser.add_argument("--chapters", nargs="*", choices=list(PAPERS), default=[],
                        help="chapters whose smoke protocol runs on the device")
    parser.add_argument("--chapter-timeout", type=int, default=150, help="seconds per chapter smoke run")
    parser.add_argument("--executor", choices=("serial", "ray"), default="serial",
                        help="where each chapter smoke run's units run (gpu.sh: ray, a local Ray on the device)")
    parser.add_argument("--threads", type=int, default=0, help="CPU thread limit (0: defaults)")
    parser.add_argument("--tiny", action="store_true", help="toy sizes (seconds on a CPU; the smoke test)")
    parser.add_argument("--results-dir", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        parser.exit(2, f"bench_gpu: --device {args.device} asked for CUDA, but torch {torch.__version__} sees no CUDA "
                       "device here; run it on a GPU machine (or --device cpu --tiny to check the script)\n")
    if args.steps < 1:
        parser.error("--steps must be at least 1")
    config = {**vars(args), "torch": torch.__version__,
              "gpu": torch.cuda.get_device_name(0) if args.device.startswith("cuda") else None}
    rec = BenchRecorder("bench_gpu", config=config, dataset="synthetic-tiny" if args.tiny else "synthetic-paper-sizes",
                        threads=args.threads or None, results_dir=args.results_dir or None,
                        name=f"bench_gpu__{args.device.replace(':', '')}{'__tiny' if args.tiny else ''}")
    from xrec_core.records import MetricRow

    step_rows = []
    for chapter in args.models:
        for row in STEP_BENCHES[chapter](args.device, args.tiny, args.steps):
            row = {**row, "device": args.device, "per_s": row["per_step"] / row["step_wall_s"]}
            rec.timed(f"{row['model']} step ({args.device})", row["step_wall_s"], row["step_cpu_s"],
                      **{k: v for k, v in row.items() if k not in ("step_wall_s", "step_cpu_s")})
            rec.add_metric(MetricRow.from_values("gpu-check", rec.dataset, row["model"], f"{row['unit']}/s ({args.device})",
                                                 [row["per_s"]], higher_is_better=True))
            rec.add_metric(MetricRow.from_values("gpu-check", rec.dataset, row["model"], f"peak memory MB ({args.device})",
                                                 [row["peak_mb"]], higher_is_better=False))
            log.info("%s: %.1f %s/s, %.3f s a step, peak %.0f MB", row["model"], row["per_s"], row["unit"],
                     row["step_wall_s"], row["peak_mb"])
            step_rows.append(row)
    rec.add_table("steps", step_rows)
    chapter_rows = []
    base = Path(args.results_dir or os.environ.get("XREC_RESULTS", "results"))
    for paper in args.chapters:
        row = run_chapter(paper, args.device, args.chapter_timeout, base / "gpu_smoke", Path("outputs") / "gpu_smoke",
                          args.executor)
        log.info("chapter %s on %s: %s in %.0f s", paper, args.device, row["status"], row["wall_s"])
        chapter_rows.append(row)
        rec.add_metric(MetricRow.from_values("gpu-check", "smoke", f"{paper} smoke run", f"finished ({args.device})",
                                             [float(row["status"] == "finished")], higher_is_better=True))
    if chapter_rows:
        rec.add_table("chapters", chapter_rows)
    print(rec.finish())
    if any(r["status"] != "finished" for r in chapter_rows):
        sys.exit(1)


if __name__ == "__main__":
    main()
