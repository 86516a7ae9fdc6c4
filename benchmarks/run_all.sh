#!/usr/bin/env bash
# Rerun every benchmark in sequence, one thread each, on a quiet machine (issue 15).
#
#   bash benchmarks/run_all.sh             # or: make bench
#   bash benchmarks/run_all.sh --dry-run   # print the commands only
#
# Refuses to start while the 1-minute load average is above MAX_LOAD (default 0.5): a benchmark
# taken while other work runs measures the other work too. Between two benchmarks it waits (up to
# 5 minutes) for the load its predecessor left to decay, and stops if the machine got busy. FORCE=1
# runs anyway; every record still flags itself as contended when its wall time exceeds 1.2x its CPU
# time, and the summary at the end lists those flags. On Linux the runs are pinned to one core
# (taskset -c ${PIN_CPU:-0}; PIN_CPU=none turns it off). Records go to results/ (the checkout must
# be clean: a benchmark record names its code); commit them from there. The peer comparison
# (bench_peers, cornac's HFT and CTR included) takes about two hours, the whole set about three.
# XREC_DATA: the data folder (default ../shared/data). On a CUDA machine, also runs gpu.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
MAX_LOAD=${MAX_LOAD:-0.5}
FORCE=${FORCE:-0}
PIN_CPU=${PIN_CPU:-0}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export XREC_DATA="${XREC_DATA:-$(cd .. && pwd)/shared/data}"
DRY_RUN=0
[ "${1:-}" = "--dry-run" ] && DRY_RUN=1

BENCHMARKS=(
    "benchmarks/bench_kernels.py --threads 1"
    "benchmarks/bench_peers.py --repeats 3 --threads 1"
    "benchmarks/bench_gru.py --updates 20 --threads 1"
    "benchmarks/bench_mt.py --repeats 3 --threads 1"
    "benchmarks/bench_mvae.py --scale full --steps 20 --threads 1"
    "benchmarks/bench_nar.py --scale full --epochs 3 --threads 1"
    "benchmarks/bench_semax.py --scale full --threads 1"
    "benchmarks/bench_data.py --n-reviews 5000000 --threads 1"
)
# measures 1 against 2 Ray workers, so it runs on every core (not pinned)
UNPINNED=("benchmarks/bench_executor.py --scale full")

load1() { cut -d' ' -f1 /proc/loadavg 2>/dev/null || echo 0; }
above() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }

PIN=()
if [ "$PIN_CPU" != "none" ] && command -v taskset >/dev/null 2>&1; then
    PIN=(taskset -c "$PIN_CPU")
fi

if [ "$DRY_RUN" = 1 ]; then
    for b in "${BENCHMARKS[@]}"; do echo "${PIN[*]} $PYTHON $b"; done
    for b in "${UNPINNED[@]}"; do echo "$PYTHON $b"; done
    echo "bash benchmarks/gpu.sh (only where torch sees a CUDA device)"
    exit 0
fi

if above "$(load1)" "$MAX_LOAD"; then
    if [ "$FORCE" != 1 ]; then
        echo "run_all.sh: load average $(load1) is above MAX_LOAD=$MAX_LOAD: the machine is busy, its timings would" \
             "not be comparable. Stop the other work (or FORCE=1 to run anyway; the records will say contended)." >&2
        exit 3
    fi
    echo "run_all.sh: load average $(load1) above $MAX_LOAD; running anyway (FORCE=1)" >&2
fi

manifest=$(mktemp)
export XREC_RECORD_MANIFEST="$manifest"
for b in "${BENCHMARKS[@]}"; do
    # the previous benchmark's own load decays (1-minute average); wait for it before the next one
    for _ in $(seq 60); do above "$(load1)" "$(awk -v m="$MAX_LOAD" 'BEGIN { print m + 0.5 }')" || break; sleep 5; done
    if above "$(load1)" "$(awk -v m="$MAX_LOAD" 'BEGIN { print m + 0.5 }')" && [ "$FORCE" != 1 ]; then
        echo "run_all.sh: load average $(load1) stayed high before '$b': stopping (FORCE=1 to go on)" >&2
        exit 3
    fi
    echo "run_all.sh: $b (load average $(load1))"
    # shellcheck disable=SC2086
    "${PIN[@]}" "$PYTHON" $b
done
for b in "${UNPINNED[@]}"; do
    echo "run_all.sh: $b (load average $(load1))"
    # shellcheck disable=SC2086
    "$PYTHON" $b
done
if "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    bash benchmarks/gpu.sh
fi
echo "run_all.sh: records written, with their contended flags:"
"$PYTHON" - "$manifest" <<'PY'
import json, sys
paths = [p for p in open(sys.argv[1]).read().split("\n") if p.strip()]
flagged = 0
for path in paths:
    b = json.load(open(path)).get("benchmark", {})
    flagged += bool(b.get("contended"))
    print(f"  {path}: wall/CPU {b.get('wall_over_cpu')}, contended {b.get('contended')}")
sys.exit(4 if flagged else 0)
PY
