#!/usr/bin/env bash
# Within a node against across nodes, on the virtual cluster of tests/cluster/cluster.sh (JSON lines,
# each tagged with its layout): the 61 MB all-reduce of VGG-16-BN's gradient (raw MPI and nmech's
# reducer) and the 2-rank training step (overlap reducer; width 1/8, global batch 128, and full width,
# batch 32). "within":
# both ranks on node1 (Open MPI's shared memory); "across": one rank on each node (TCP over the
# bridge). Rounds alternate the layouts, since this VM drifts between launches.
#   bash bench/cluster_bench.sh [ROUNDS] [REPS]   brings the virtual 2-node cluster up and down
#                                                 itself, or uses the one SLURM_CONF names
#   NMECH_BENCH_VIRTUAL=0 bash bench/cluster_bench.sh    inside an allocation of 2 nodes of a real cluster
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3} reps=${2:-20}
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
if [ -z "${SLURM_CONF:-}" ] && [ "${NMECH_BENCH_VIRTUAL:-1}" != 0 ]; then
  export CLUSTER_DIR=${CLUSTER_DIR:-/var/tmp/nmech-cluster-bench}
  tests/cluster/cluster.sh up 2 >&2
  trap 'tests/cluster/cluster.sh down >&2' EXIT
  export SLURM_CONF=$CLUSTER_DIR/slurm.conf
fi
B=$PWD/build/bench
tag() { sed "s/^{/{\"layout\": \"$1\", \"round\": $2, /"; }
run() {  # run LAYOUT ROUND PROGRAM ARGS...
  local nodes=1
  [ "$1" = across ] && nodes=2
  srun --mpi=pmix -N "$nodes" -n 2 "${@:3}" | grep '^{' | tag "$1" "$2"
}
for round in $(seq "$rounds"); do
  for layout in within across; do
    run "$layout" "$round" "$B/nmech_reduce_bench" --reps "$reps"
    run "$layout" "$round" "$B/nmech_group_step_bench" --reducer overlap --batch 128 --width 0.125 --steps 30
    run "$layout" "$round" "$B/nmech_group_step_bench" --reducer overlap --batch 32 --width 1 --steps 12
  done
done
echo "{\"machine\": \"$(nproc --all) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"date\": \"$(date -u '+%F %T')\", \"commit\": \"$(git rev-parse --short HEAD)\"}"
