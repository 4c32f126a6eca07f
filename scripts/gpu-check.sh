#!/usr/bin/env bash
# The GPU checks (NCCL reduction, the GPU training run) in one command, for a machine with a GPU (about 5–8 minutes
# with 16 cores): builds against that machine's CUDA LibTorch and NCCL (an installed PyTorch's
# CMake prefix, or LIBTORCH=<a LibTorch distribution>) with the `gpu` preset, runs the GPU tests
# (ctest -L gpu: the one-rank reduction of every device transport (NCCL), a VGG-16-BN run on the GPU whose exact predictions
# must hold), then bench/gpu.sh (images per second, tracer on and off, against Python eager).
# Needs what scripts/install-deps.sh installs (MPI, parallel HDF5, ...), the CUDA toolkit and a
# GPU. Logs and results go to $OUT (default build-gpu/check).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-build-gpu/check}
mkdir -p "$out"
py=${PYTHON:-python3}
export PYTHON=$py OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
prefix=${LIBTORCH:-$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')}
nvidia-smi -L | tee "$out/gpus.txt"
step() { echo "== $1 ($(date -u +%T))"; }
step "configure against $prefix"
cmake --preset gpu -DCMAKE_PREFIX_PATH="$prefix" >"$out/configure.log" 2>&1 || { tail -30 "$out/configure.log"; exit 1; }
grep -E "LibTorch|NCCL transport" "$out/configure.log"
step build
cmake --build build-gpu -j "$(nproc)" --target nmech test_prepare_data nccl_check transport_check nmech_step_bench \
  >"$out/build.log" 2>&1 || { tail -40 "$out/build.log"; exit 1; }
step "GPU tests"
failed=0
ctest --test-dir build-gpu -L gpu --output-on-failure 2>&1 | tee "$out/ctest.log" || failed=1
step "GPU benchmark"  # measured even when a test failed; the exit status still says so
BUILD=build-gpu bash bench/gpu.sh | tee "$out/bench.jsonl" || failed=1
step "done (exit $failed)"
exit "$failed"
