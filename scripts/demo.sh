#!/usr/bin/env bash
# The README's first command: set up, build, train the demo sweep (configs/sweep-demo.toml: VGG-16-BN
# at width 1/8 on Fashion-MNIST, 2 learning rates x 2 momenta) under MPI into out/sweep-demo.h5,
# and write the report (theory against measurement for every run) to out/report/index.html.
# Extra arguments go to `nmech sweep` (e.g. --progress bar).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mkdir -p out
rm -rf out/sweep-demo.h5 out/sweep-demo.h5.ckpt  # a fresh demo (a rerun on a store resumes it)
if [ "$(id -u)" = 0 ]; then export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; fi
ranks=$(nproc)
[ "$ranks" -gt 4 ] && ranks=4  # four runs: more groups would sit idle
mpirun -np "$ranks" ./build/src/apps/nmech sweep configs/sweep-demo.toml -o out/sweep-demo.h5 "$@"
./build/src/apps/nmech status out/sweep-demo.h5
PYTHONPATH=analysis /usr/bin/python3 -m nmech_analysis report out/sweep-demo.h5 -o out/report
echo "report: out/report/index.html"
