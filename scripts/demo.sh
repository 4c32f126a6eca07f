#!/usr/bin/env bash
# The README's first command: set up, build, train the demo's five sweeps under MPI into
# out/<sweep>.h5 and write one report over all of them to out/report/index.html:
#   configs/sweep-demo.toml           VGG-16-BN at width 1/8, learning rate x batch size
#   configs/sweep-demo-mlp.toml       MLP-BN, learning rate x batch size x weight decay (equilibrium)
#   configs/sweep-demo-momentum.toml  MLP-BN, over- and underdamped momentum
#   configs/sweep-demo-conservation.toml  MLP-BN, four learning rates to equal t at λ = 0
#   configs/sweep-demo-flow.toml      MLP, four learning rates to equal t at λ = 0.2 (gradient flow)
# Each config says why its values were chosen. Extra arguments go to `nmech sweep` (e.g. --progress bar).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mkdir -p out
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
ranks=$(nproc)
[ "$ranks" -gt 4 ] && ranks=4  # the VGG sweep has four runs: more groups would sit idle there
stores=()
for sweep in sweep-demo sweep-demo-mlp sweep-demo-momentum sweep-demo-conservation sweep-demo-flow; do
  store="out/$sweep.h5"
  rm -rf "$store" "$store.ckpt"  # a fresh demo (a rerun on a store resumes it)
  mpirun -np "$ranks" ./build/src/apps/nmech sweep "configs/$sweep.toml" -o "$store" "$@"
  stores+=("$store")
done
for store in "${stores[@]}"; do ./build/src/apps/nmech status "$store"; done
PYTHONPATH=analysis /usr/bin/python3 -m nmech_analysis report "${stores[@]}" -o out/report
echo "report: out/report/index.html"
