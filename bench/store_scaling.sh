#!/usr/bin/env bash
# Store creation at scale (JSON lines): nmech_store_bench for each number of ranks and runs.
#   bash bench/store_scaling.sh [RUNS] [RANKS]        defaults "100 1000 10000" and "1 2 4"
# BEFORE=/path/to/an/older/nmech_store_bench interleaves it with this build's (each line tagged
# "build": "before" or "this"), for before/after tables measured in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
sizes=${1:-100 1000 10000} ranks=${2:-1 2 4}
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
bins=("this:build/bench/nmech_store_bench")
[ -n "${BEFORE:-}" ] && bins=("before:$BEFORE" "${bins[@]}")
for n in $sizes; do
  for r in $ranks; do
    for b in "${bins[@]}"; do
      mpirun -n "$r" --oversubscribe --bind-to none "${b#*:}" --runs "$n" | sed "s/^{/{\"build\": \"${b%%:*}\", /"
    done
  done
done
echo "{\"machine\": \"$(nproc --all) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"date\": \"$(date -u '+%F %T')\", \"commit\": \"$(git rev-parse --short HEAD)\"}"
