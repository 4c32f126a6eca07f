// Trainer checkpoints (DESIGN.md "Resume is exact"): everything a step reads that an earlier
// step wrote, so training from a checkpoint gives the same bits as never stopping. LibTorch's
// archive format; written to "<path>.tmp", fsynced and renamed into place.
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "nmech/config/run_config.hpp"
#include "nmech/data/loader.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"

namespace nmech::train {

namespace {

constexpr std::int64_t kFormat = 1;

at::Tensor doubles(const std::vector<double>& v) {
  return torch::tensor(v, torch::kDouble);
}

std::vector<double> to_doubles(const at::Tensor& t) {
  auto c = t.contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

void fsync_path(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

at::Tensor read(torch::serialize::InputArchive& in, const std::string& key) {
  at::Tensor t;
  in.read(key, t);
  return t;
}

}  // namespace

void Trainer::save_checkpoint(const std::string& path, std::int64_t next_step, const store::Progress& p) {
  State& s = *s_;
  torch::serialize::OutputArchive out;
  const auto pos = s.loader_position();
  out.write("meta", torch::tensor({kFormat, next_step, p.rows_committed, p.last_step, pos.epoch,
                                   pos.offset, static_cast<std::int64_t>(s.sgd->steps())},
                                  torch::kLong));
  out.write("last_loss", doubles({p.last_loss}));
  out.write("config_sha256", c10::IValue(config::sha256_hex(config::to_toml(s.cfg))));
  for (std::size_t i = 0; i < s.named.size(); ++i) out.write("param." + std::to_string(i), s.named[i].second.detach());
  std::size_t b = 0;
  for (const auto& buf : s.net->buffers(true)) out.write("buffer." + std::to_string(b++), buf);
  const auto& v = s.sgd->buffers();
  for (std::size_t i = 0; i < v.size(); ++i)
    if (v[i].defined()) out.write("momentum." + std::to_string(i), v[i]);
  out.write("tracer", doubles(s.tracer->save_state()));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    out.write("rng", gen.get_state());
  }
  const std::string tmp = path + ".tmp";
  out.save_to(tmp);
  fsync_path(tmp);
  std::filesystem::rename(tmp, path);
}

std::int64_t Trainer::load_checkpoint(const std::string& path, store::Progress& p) {
  State& s = *s_;
  torch::serialize::InputArchive in;
  in.load_from(path, torch::kCPU);  // a GPU run's tensors too: copied onto its device below
  c10::IValue sha;
  in.read("config_sha256", sha);
  if (sha.toStringRef() != config::sha256_hex(config::to_toml(s.cfg)))
    throw std::runtime_error(path + ": checkpoint of a different run config");
  const at::Tensor meta = read(in, "meta");
  auto m = meta.accessor<std::int64_t, 1>();
  if (m[0] != kFormat) throw std::runtime_error(path + ": unknown checkpoint format");
  at::NoGradGuard no_grad;
  for (std::size_t i = 0; i < s.named.size(); ++i) s.named[i].second.copy_(read(in, "param." + std::to_string(i)));
  std::size_t b = 0;
  for (auto& buf : s.net->buffers(true)) buf.copy_(read(in, "buffer." + std::to_string(b++)));
  auto& v = s.sgd->buffers();
  for (std::size_t i = 0; i < v.size(); ++i) {
    at::Tensor t;
    if (in.try_read("momentum." + std::to_string(i), t)) v[i] = t.to(s.device, false, /*copy=*/true);
  }
  s.sgd->set_steps(static_cast<long>(m[6]));
  s.loader = std::make_unique<data::Loader>(s.data->count, s.cfg.seed, data::LoaderPosition{m[4], m[5]});
  s.next.reset();
  s.tracer->load_state(to_doubles(read(in, "tracer")));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(read(in, "rng"));
  }
  p.rows_committed = m[2];
  p.last_step = m[3];
  p.last_loss = to_doubles(read(in, "last_loss"))[0];
  return m[1];
}

}  // namespace nmech::train
