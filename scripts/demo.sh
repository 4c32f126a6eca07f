#!/usr/bin/env bash
# The README's first command: set up, build, run the demo (configs/demo.toml) into out/demo.h5,
# and print per family how well the exact and continuous theory predict the measured traces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mkdir -p out
./build/src/apps/nmech run configs/demo.toml -o out/demo.h5 --overwrite "$@"
# The report: theory against measurement, figures and summary.csv (open out/report/index.html).
PYTHONPATH=analysis /usr/bin/python3 -m nmech_analysis report out/demo.h5 -o out/report
echo "report: out/report/index.html"
