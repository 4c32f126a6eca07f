#!/usr/bin/env bash
# Sweep benchmark: the share of a sweep's wall time spent writing the store, and the
# trace bytes per recorded step against the paper's checkpoint-then-trace approach.
# Usage: bench/sweep_bench.sh [ranks] [config]. Prints the sweep's summary line and JSON lines.
set -euo pipefail
cd "$(dirname "$0")/.."
ranks=${1:-2}
config=${2:-configs/sweep-demo.toml}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
export OMP_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun -np "$ranks" --oversubscribe ./build/src/apps/nmech sweep "$config" -o "$out/sweep.h5" \
  --progress-every 60 | grep 'sweep summary'
# Bytes per recorded step of one run, from the plan (the same layout the store is created with):
# the demo model, and VGG-16-BN at full width (classifier 4096, 64x64 input as in the paper).
for extra in "" "--set width=1 --set classifier_width=4096 --set input_size=64"; do
  tmpcfg="$out/plan.toml"
  cp "$config" "$tmpcfg"
  for kv in $extra; do
    [ "$kv" = "--set" ] && continue
    k=${kv%%=*}
    sed -i "/^$k *=/d" "$tmpcfg"
    echo "$kv" | sed 's/=/ = /' >> "$tmpcfg"
  done
  ./build/src/apps/nmech plan "$tmpcfg" -P "$ranks" --json |
    /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin); r=p["runs"][0]; m=p["model"];
print(json.dumps({"model": m["name"], "parameters": m["parameters"], "sets": m["sets"],
  "values_per_row": r["values_per_row"], "bytes_per_recorded_step": 8 * r["values_per_row"],
  "param_bytes_float32": 4 * m["parameters"]}))'
done
echo "{\"machine\": \"$(nproc --all) cores, $(uname -m), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)\", \"date\": \"$(date -u +%F)\", \"commit\": \"$(git rev-parse --short HEAD)\"}"
