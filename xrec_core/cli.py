"""Command-line entry point: ``xrec`` or ``python -m xrec_core``.

Commands
--------
``run PAPER|NOTEBOOK|all --scale smoke -p key=value [--executor ray [--address HOST:6379]]``
    Execute paper notebooks with papermill; writes the executed notebook and the run record. With
    ``--executor ray`` the protocol's units run as Ray tasks (a local Ray, or the cluster at ``--address``).
``tune PAPER --scale full -p dataset=... [--model NAME ...] [--trials N] [--executor ray]``
    Run (or continue) the chapter's hyperparameter studies; ``run`` then uses the best parameters.
    With ``--executor ray`` several trials of a study run at once, as Ray tasks.
``data status [--verify]``
    Which datasets are present under the data folder, with checksums and where to get the rest.
``book [--scale smoke]``
    Build the Jupyter Book site from executed notebooks and the run records (no training).
``all [--scale smoke]``
    ``run all`` then ``book``: the README's main job.
``scorecard``
    Print the reproduction scorecard of the committed records.
"""

from __future__ import annotations

import argparse
import ast
import logging
import sys
from pathlib import Path
from typing import Any

from .config import ConfigError
from .executor import EXECUTORS, ExecutorError
from .paths import DataRootNotSet
from .papers import PAPERS
from .records import DirtyCheckoutError
from .tuning import TuningError

log = logging.getLogger("xrec")
ALLOW_DIRTY_HELP = ("write a non-smoke record although xrec_core/ or notebooks/ have uncommitted changes "
                    "(the record says so)")


def parse_param(text: str) -> tuple[str, Any]:
    """``key=value`` -> (key, python value); values that are not literals stay strings."""
    key, sep, raw = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"Parameter {text!r} is not key=value")
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        value = raw
    return key.strip(), value


def _papers(name: str) -> list[str]:
    return list(PAPERS) if name == "all" else [name]


def cmd_run(args: argparse.Namespace) -> int:
    from .runner import run_paper

    params = dict(parse_param(p) for p in args.param)
    if args.executor is not None:
        params["executor"] = args.executor
    if args.address:
        params["ray_address"] = args.address
    for key in _papers(args.paper):
        result = run_paper(key, args.scale, params, output_dir=args.output_dir, results_dir=args.results_dir,
                           data_dir=args.data_dir, log_output=getattr(args, "log_output", None),
                           allow_dirty=args.allow_dirty)
        print(f"{result.paper}: executed notebook {result.notebook} ({result.wall_time_s:.0f} s)")
        for rec in result.records:
            print(f"  record {rec}")
    return 0


def cmd_tune(args: argparse.Namespace) -> int:
    import importlib

    from .device import set_threads
    from .executor import check_executor, unit_resources
    from .papers import get_paper
    from .tuning import study_path, trials_in_parallel

    paper = get_paper(args.paper)
    executor = args.executor or "serial"
    check_executor(executor, args.address or None)
    overrides = {"data_dir": args.data_dir, "results_dir": args.results_dir, **dict(parse_param(p) for p in args.param)}
    cfg = paper.config_class().from_scale(args.scale, **overrides)
    hook = getattr(importlib.import_module(paper.config.partition(":")[0]), "tune_models", None)
    if hook is None:
        raise ConfigError(f"chapter {paper.key} does not define tune_models yet")
    if executor == "serial":
        set_threads(cfg.n_threads)  # the trials run in this process (Ray workers limit their own threads)
    with trials_in_parallel(executor, args.address or None, unit_resources(cfg.n_threads, cfg.device),
                            args.parallel_trials):
        studies = hook(cfg, args.model or None, args.trials)
    for model, res in studies.items():
        print(f"{paper.key}/{cfg.dataset} {model}: best {res.best_value:.6g} with {res.best_params} "
              f"({res.n_trials_done} trials, {res.n_pruned} pruned)")
    print(f"optuna-dashboard sqlite:///{study_path(paper.key, cfg.dataset, cfg.results_dir or None, cfg.scale)}")
    return 0


def cmd_data(args: argparse.Namespace) -> int:
    from .data.registry import status

    table = status(args.data_dir, verify=args.verify)
    with _wide_pandas():
        print(table.to_string(index=False))
    return 0


def cmd_book(args: argparse.Namespace) -> int:
    from .book import build_book

    site = build_book(scale=args.scale, notebooks_dir=args.notebooks_dir, results_dirs=args.results_dir,
                      out_dir=args.out_dir, data_dir=args.data_dir)
    print(f"Site built: {site / 'index.html'}")
    return 0


def cmd_all(args: argparse.Namespace) -> int:
    args.paper, args.param = "all", args.param or []
    cmd_run(args)
    args.notebooks_dir = None
    args.results_dir = [args.results_dir] if args.results_dir else None
    return cmd_book(args)


def cmd_scorecard(args: argparse.Namespace) -> int:
    from .records import load_records
    from .report import absent_datasets, scorecard

    records = [r for d in (args.results_dir or [None]) for r in load_records(d)]
    card = scorecard(records, absent=absent_datasets())
    with _wide_pandas():
        print(card.drop(columns=["rel_gap", "seed", "record"], errors="ignore").to_string(index=False) if not card.empty
              else "no records")
    return 0


def cmd_rejudge(args: argparse.Namespace) -> int:
    from .records import rejudge_records

    for root in args.results_dir or [None]:
        for path, changed in rejudge_records(root).items():
            print(f"{path}: health re-derived; {len(changed)} claim(s) now untestable"
                  + (": " + "; ".join(changed) if changed else ""))
    return 0


class _wide_pandas:
    def __enter__(self):
        import pandas as pd

        self._ctx = pd.option_context("display.width", 250, "display.max_columns", 30, "display.max_colwidth", 60)
        self._ctx.__enter__()

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="xrec", description="xrec: a reproducibility book for explainable recommendation")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--data-dir", default=None, help="data folder (default: $XREC_DATA)")

    def execution(p: argparse.ArgumentParser, what: str) -> None:
        p.add_argument("--executor", choices=EXECUTORS, default=None,
                       help=f"where {what} run: serial (default, in this process) or ray (Ray tasks)")
        p.add_argument("--address", default=None, metavar="HOST:PORT",
                       help="a running Ray cluster's head (`ray start --head` prints it); default: a local Ray")

    run = sub.add_parser("run", help="execute paper notebook(s) with papermill")
    run.add_argument("paper", help=f"paper key ({', '.join(PAPERS)}), a notebook path, or 'all'")
    run.add_argument("--scale", default="smoke", help="smoke | full | paper (see each paper's config)")
    run.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="notebook parameter")
    run.add_argument("--output-dir", default=None, help="where executed notebooks go (default: outputs/)")
    run.add_argument("--results-dir", default=None, help="where run records go (default: $XREC_RESULTS or results/)")
    run.add_argument("--log-output", action=argparse.BooleanOptionalAction, default=None,
                     help="stream the notebook's output (progress bars, logs) here; default: on except at smoke scale")
    run.add_argument("--allow-dirty", action="store_true", help=ALLOW_DIRTY_HELP)
    execution(run, "the protocol's units of work")
    common(run)
    run.set_defaults(func=cmd_run)

    tune = sub.add_parser("tune", help="run (or continue) a paper's hyperparameter studies (Optuna)")
    tune.add_argument("paper", help=f"paper key ({', '.join(PAPERS)})")
    tune.add_argument("--scale", default="full", help="scale whose config (and trial budget) the studies use")
    tune.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE", help="config parameter")
    tune.add_argument("--model", action="extend", nargs="+", default=[], metavar="NAME",
                      help="tune only these models (default: every model the chapter tunes)")
    tune.add_argument("--trials", type=int, default=None, help="trials per model (default: the scale's tune_trials)")
    tune.add_argument("--results-dir", default=None, help="where studies go (default: $XREC_RESULTS or results/)")
    execution(tune, "the trials")
    tune.add_argument("--parallel-trials", type=int, default=None, metavar="N",
                      help="with --executor ray: trials run at once (default: as many as the cluster's CPUs/GPUs fit)")
    common(tune)
    tune.set_defaults(func=cmd_tune)

    data = sub.add_parser("data", help="dataset tools")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    st = data_sub.add_parser("status", help="which datasets are present, with checksums")
    st.add_argument("--verify", action="store_true", help="hash every present file against its expected SHA-256")
    common(st)
    st.set_defaults(func=cmd_data)

    book = sub.add_parser("book", help="build the Jupyter Book site (no training)")
    book.add_argument("--scale", default="smoke", help="scale of the executed notebooks to publish")
    book.add_argument("--notebooks-dir", default=None, help="folder of executed notebooks (default: outputs/<scale>)")
    book.add_argument("--results-dir", action="append", default=None, help="record folder(s) (default: results/)")
    book.add_argument("--out-dir", default=None, help="build folder (default: _build/)")
    common(book)
    book.set_defaults(func=cmd_book)

    everything = sub.add_parser("all", help="run every paper notebook, then build the book")
    everything.add_argument("--scale", default="smoke")
    everything.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")
    everything.add_argument("--output-dir", default=None)
    everything.add_argument("--results-dir", default=None)
    everything.add_argument("--out-dir", default=None)
    everything.add_argument("--allow-dirty", action="store_true", help=ALLOW_DIRTY_HELP)
    execution(everything, "the protocols' units of work")
    common(everything)
    everything.set_defaults(func=cmd_all)

    card = sub.add_parser("scorecard", help="print the reproduction scorecard")
    card.add_argument("--results-dir", action="append", default=None)
    card.set_defaults(func=cmd_scorecard)

    rejudge = sub.add_parser("rejudge", help="apply today's convergence rule to stored records (their learning curves "
                                             "and claims; nothing is run)")
    rejudge.add_argument("--results-dir", action="append", default=None)
    rejudge.set_defaults(func=cmd_rejudge)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (ConfigError, FileNotFoundError, DataRootNotSet, DirtyCheckoutError, TuningError, ExecutorError) as exc:
        print(f"xrec: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # data errors carry their own clear message
        from .data import CorruptDataError, MissingDataError

        if isinstance(exc, (MissingDataError, CorruptDataError)):
            print(f"xrec: error: {exc}", file=sys.stderr)
            return 2
        raise
