#!/usr/bin/env bash
# Reproduce every peer (nnU-Net v2) measurement, in order. Results: benchmarks/_peer/results.jsonl
#   bash benchmarks/peer/run_all.sh --machine E     # extra args (--machine, --max-wait 600) go to every timing script
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
bash "$HERE/setup_peer.sh"
python3 "$HERE/convert_hippocampus.py"
python3 "$HERE/time_fingerprint.py" --reps 3 "$@"
python3 "$HERE/time_plan_and_preprocess.py" --reps 3 "$@"   # leaves the preprocessed data in place
python3 "$HERE/time_train_step.py" --warmup 2 --iters 10 --reps 2 "$@"
python3 "$HERE/make_checkpoint.py"                          # no-op if the checkpoint exists
python3 "$HERE/time_predict.py" --reps 2 "$@"
python3 "$HERE/time_predict.py" --reps 2 --cli "$@"
