#!/usr/bin/env bash
# The gradient-reduction benchmarks in one go (JSON lines): the 60 MB all-reduce (raw MPI, nmech's reducer,
# Gloo), the 2-rank training step with each reducer against Python DDP (gloo), weak scaling
# 2 ranks vs 1 at the same per-rank batch, at width 1/8 (batch 128) and full width (batch 32).
# Every process runs one thread and no process is pinned (mp.spawn pins nothing either).
set -euo pipefail
cd "$(dirname "$0")/.."
steps=${1:-30}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpi() { mpirun -n "$1" --bind-to none "${@:2}"; }
B=./build/bench
mpi 2 $B/nmech_reduce_bench --reps 20 | tee /tmp/nmech_reduce.json
n=$(/usr/bin/python3 -c 'import json,sys; print(json.loads(open("/tmp/nmech_reduce.json").readline())["elements"])')
/usr/bin/python3 bench/gloo_allreduce.py "$n" 20
for w in 0.125:128 1:32; do
  width=${w%%:*} batch=${w##*:} s=$steps
  [ "$width" = 1 ] && s=$((steps / 2))
  for r in overlap buckets single; do
    mpi 2 $B/nmech_group_step_bench --reducer $r --batch "$batch" --width "$width" --steps "$s"
  done
  mpi 2 $B/nmech_group_step_bench --reducer overlap --batch "$batch" --width "$width" --steps "$s" --trace
  mpi 1 $B/nmech_group_step_bench --batch $((batch / 2)) --width "$width" --steps "$s"
  /usr/bin/python3 bench/ddp_step.py "$batch" "$s" "$width"
done
echo "{\"machine\": \"$(nproc --all) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"date\": \"$(date -u +%F)\", \"commit\": \"$(git rev-parse --short HEAD)\"}"
