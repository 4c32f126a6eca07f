#!/usr/bin/env bash
# GPU step benchmark: VGG-16-BN at Tiny ImageNet's shape (3×64×64, 200 classes),
# width 1, classifier 1024, batch 256, float32 without TF32, synthetic images: nmech with the
# tracer off and on, then Python PyTorch eager on the same GPU (the same settings; its batch kept
# on the GPU, and copied from host memory every step as nmech does). Images per second, JSON lines.
# BUILD: the build folder (default build-gpu, from scripts/gpu-check.sh); PYTHON: the Python
# that has the CUDA PyTorch.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${BUILD:-build-gpu}
steps=${1:-40}
nmech=(--device cuda --image 3,64,200 --steps "$steps" --set model=vgg16_bn --set width=1
       --set classifier_width=1024 --set batch_size=256 --set input_size=64 --set dataset=synthetic)
for rep in 1 2; do
  "$build/bench/nmech_step_bench" --no-trace "${nmech[@]}"
  "$build/bench/nmech_step_bench" "${nmech[@]}"
  for copy in "" --copy; do  # its batch kept on the GPU, and copied from host memory each step
    "${PYTHON:-python3}" bench/step_bench.py "$steps" --device cuda --image 3,64,200 --width 1 --classifier 1024 \
      --batch 256 $copy
  done
done
gpu=$(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader 2>/dev/null | head -1 || echo unknown)
echo "{\"machine\": \"$gpu, $(nproc) cores\", \"date\": \"$(date -u +%FT%TZ)\", \"commit\": \"$(git rev-parse --short HEAD 2>/dev/null || echo unknown)\"}"
