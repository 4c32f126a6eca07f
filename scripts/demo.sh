#!/usr/bin/env bash
# The README's first command: set up, build, run the demo (configs/demo.toml) into out/demo.h5,
# and print per family how well the exact and continuous theory predict the measured traces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
mkdir -p out
./build/src/apps/nmech run configs/demo.toml -o out/demo.h5 --overwrite "$@"
