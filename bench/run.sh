#!/usr/bin/env bash
# Step benchmark: C++ with the tracer off and on (separate processes: peak memory per mode),
# then Python PyTorch on the same model. Run on a quiet machine; prints JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-60}
export OMP_NUM_THREADS=1
for rep in 1 2; do
  ./build/bench/nmech_step_bench --no-trace --steps "$steps"
  ./build/bench/nmech_step_bench --steps "$steps"
done
/usr/bin/python3 bench/step_bench.py "$steps"
echo "{\"machine\": \"$(nproc --all) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"date\": \"$(date -u +%F)\", \"commit\": \"$(git rev-parse --short HEAD)\"}"
