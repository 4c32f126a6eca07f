#include "nmech/train/device.hpp"

#include <torch/torch.h>

#include "nmech/config/run_config.hpp"

namespace nmech::train {

// PyTorch allows TF32 tensor-core rounding of convolutions and matrix products for cuDNN by default.
void use_exact_gpu_kernels() {
  auto& ctx = at::globalContext();
  ctx.setAllowTF32CuDNN(false);
  ctx.setAllowTF32CuBLAS(false);
  ctx.setDeterministicCuDNN(true);
  ctx.setBenchmarkCuDNN(false);
}

int visible_gpus() { return static_cast<int>(torch::cuda::device_count()); }

std::string training_device(const config::RunConfig& cfg, int local_rank, const std::string& origin) {
  if (cfg.device == "cpu") return "cpu";
  const int gpus = visible_gpus();
#ifdef NMECH_TORCH_CUDA
  if (gpus == 0) throw config::ConfigError(origin + ": key 'device': \"cuda\" but no GPU is visible to this process");
#else
  throw config::ConfigError(origin + ": key 'device': \"cuda\" but this nmech was built with a LibTorch without "
                            "CUDA (README: the GPU build)");
#endif
  return "cuda:" + std::to_string(local_rank % gpus);
}

}  // namespace nmech::train
