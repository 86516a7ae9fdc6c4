#!/usr/bin/env bash
# The GPU check of issue 15, in under 10 minutes on one CUDA device:
#   1. every neural model of the five chapters takes paper-size training steps on the device
#      (throughput and torch.cuda.max_memory_allocated per model);
#   2. every chapter's smoke protocol runs with device=cuda, its units as Ray tasks on the device
#      (xrec run <paper> --scale smoke --executor ray, issue 17).
# Both go into one record, results/bench_gpu/bench_gpu__cuda.json (the chapters' own smoke records
# into results/gpu_smoke/). Refuses, with exit status 2, where torch sees no CUDA device.
#
#   bash benchmarks/gpu.sh                 # XREC_DATA: the data folder (default ../shared/data)
#   bash benchmarks/gpu.sh --steps 5       # extra arguments go to benchmarks/bench_gpu.py
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"

if ! "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu.sh: no CUDA device: torch $("$PYTHON" -c 'import torch; print(torch.__version__)') sees none on this" \
         "machine. This check runs only on a GPU machine (on a CPU: python benchmarks/bench_gpu.py --device cpu --tiny)." >&2
    exit 2
fi
export XREC_DATA="${XREC_DATA:-$(cd .. && pwd)/shared/data}"
if [ ! -d "$XREC_DATA" ]; then
    echo "gpu.sh: data folder $XREC_DATA not found: set XREC_DATA (the chapters' smoke runs read it)" >&2
    exit 2
fi
"$PYTHON" -c "import torch; print('gpu.sh:', torch.cuda.get_device_name(0), 'torch', torch.__version__)"
# steps take about a minute or two; five smoke chapters at most 90 s each: under 10 minutes in all
exec timeout 590 "$PYTHON" benchmarks/bench_gpu.py --device cuda --chapters gru mt mvae nar semax --executor ray --chapter-timeout 90 "$@"
