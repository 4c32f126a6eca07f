#pragma once
// Where a run trains, chosen in one place: the device a rank gets and the GPU kernels it uses.
#include <string>

#include "nmech/config/run_config.hpp"

namespace nmech::train {

// GPUs this process sees (0 with a LibTorch without CUDA).
int visible_gpus();

// Where a run trains: "cpu", or "cuda:<local_rank modulo the GPUs visible>" for device = "cuda"
// (local_rank: comm::local_rank, the rank's index on its node). A ConfigError naming `origin` and
// key 'device' where no GPU is visible or this LibTorch was built without CUDA.
std::string training_device(const config::RunConfig& cfg, int local_rank, const std::string& origin);

// float32 means float32 on a GPU too (no TF32 rounding) and the same kernels every run
// (deterministic cuDNN, no autotuning), so a resumed run repeats an uninterrupted one.
void use_exact_gpu_kernels();

}  // namespace nmech::train
