#!/usr/bin/env bash
# The README's second command: set up, build, and run every test (unit, MPI, integration).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
ctest --preset default -j 1 "$@"
