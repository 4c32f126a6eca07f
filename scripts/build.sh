#!/usr/bin/env bash
# Installs what is missing, configures and builds (Release with debug info, Ninja, ./build).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
[ -f build/build.ninja ] || cmake --preset default >/dev/null
cmake --build --preset default -j "$(nproc)"
