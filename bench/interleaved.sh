#!/usr/bin/env bash
# C++ against Python, measured interleaved (this VM drifts 20-30% between launches): ROUNDS rounds,
# each running, one after the other, the 1-rank step (nmech_step_bench, tracing off, against
# bench/step_bench.py) and the 2-rank step (nmech_group_step_bench --reducer overlap against
# bench/ddp_step.py, Python DDP with gloo), VGG-16-BN width 1/8, batch 128. JSON lines, each
# tagged with its round.
#   bash bench/interleaved.sh [ROUNDS] [STEPS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-4} steps=${2:-40}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
B=./build/bench
tag() { grep '^{' | sed "s/^{/{\"round\": $1, /"; }
for round in $(seq "$rounds"); do
  $B/nmech_step_bench --no-trace --steps "$steps" | tag "$round"
  /usr/bin/python3 bench/step_bench.py "$steps" | tag "$round"
  mpirun -n 2 --bind-to none $B/nmech_group_step_bench --reducer overlap --batch 128 --width 0.125 --steps "$steps" | tag "$round"
  /usr/bin/python3 bench/ddp_step.py 128 "$steps" 0.125 | tag "$round"
done
echo "{\"machine\": \"$(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"date\": \"$(date -u '+%F %T')\", \"commit\": \"$(git rev-parse --short HEAD)\"}"
