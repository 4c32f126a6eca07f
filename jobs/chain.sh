#!/usr/bin/env bash
# Grids bigger than one allocation's time: N jobs on the same store, each starting when the one
# before it has ended (afterany: also after a stop by signal), each resuming what is unfinished.
# A job that finds every run finished exits 0 at once.
#   jobs/chain.sh N CONFIG STORE [sbatch options ...]      prints the N job ids
set -euo pipefail
if [ $# -lt 3 ]; then
  echo "usage: jobs/chain.sh N CONFIG STORE [sbatch options ...]" >&2
  exit 2
fi
n=$1 config=$2 store=$3
shift 3
here=$(cd "$(dirname "$0")" && pwd)
prev=""
for _ in $(seq 1 "$n"); do
  dep=()
  [ -n "$prev" ] && dep=("--dependency=afterany:$prev")
  prev=$(sbatch --parsable ${dep[@]+"${dep[@]}"} "$@" "$here/sweep.sbatch" "$config" "$store")
  prev=${prev%%;*}  # "id;cluster" on federated clusters
  echo "$prev"
done
