// Trainer checkpoints (docs/FAULTS.md): everything a step reads that an earlier step wrote, so
// training from a checkpoint gives the same bits as never stopping; and proof that a file is the
// one this run wrote, for this store, config and data, whole.
//
// The file: a first line "nmech-checkpoint 2", a second line of JSON (whose it is, where it
// stands, the size and SHA-256 of the rest), then LibTorch's archive. Written in full to
// "<path>.tmp" with every write checked, fsynced, and renamed into place, so a crash or a full
// disk leaves the old file or the new one, never half of one.
#include <ATen/CPUGeneratorImpl.h>
#include <fcntl.h>
#include <torch/torch.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "nmech/config/run_config.hpp"
#include "nmech/config/sha256.hpp"
#include "nmech/data/loader.hpp"
#include "nmech/train/trainer.hpp"
#include "nmech/train/trainer_state.hpp"
#include "nmech/util/io_error.hpp"

namespace nmech::train {

namespace {

constexpr const char* kMagic = "nmech-checkpoint 2\n";

at::Tensor doubles(const std::vector<double>& v) {
  return torch::tensor(v, torch::kDouble);
}

std::vector<double> to_doubles(const at::Tensor& t) {
  auto c = t.contiguous();
  return {c.data_ptr<double>(), c.data_ptr<double>() + c.numel()};
}

at::Tensor read(torch::serialize::InputArchive& in, const std::string& key) {
  at::Tensor t;
  in.read(key, t);
  return t;
}

std::string short_hash(const std::string& h) { return h.empty() ? "none" : h.substr(0, 12); }

// Writes all of `text` to `path` and fsyncs it; util::IoError on any failure (the file removed).
void write_file(const std::string& path, const std::string& text) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw util::IoError(path + ": cannot write the checkpoint: " + std::strerror(errno));
  std::size_t done = 0;
  int err = 0;
  while (done < text.size() && err == 0) {
    const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno != EINTR) err = errno;
    if (n > 0) done += static_cast<std::size_t>(n);
  }
  if (err == 0 && ::fsync(fd) != 0) err = errno;
  if (::close(fd) != 0 && err == 0) err = errno;
  if (err != 0) {
    ::unlink(path.c_str());
    throw util::IoError(path + ": cannot write the checkpoint: " + std::strerror(err));
  }
}

std::string config_hash(const config::RunConfig& cfg) { return config::sha256_hex(config::to_toml(cfg)); }

}  // namespace

void Trainer::save_checkpoint(const std::string& path, std::int64_t next_step, const store::Progress& p,
                              const CheckpointOwner& owner) {
  State& s = *s_;
  torch::serialize::OutputArchive out;
  const auto pos = s.loader_position();
  out.write("meta", torch::tensor({next_step, p.rows_committed, p.last_step, pos.epoch, pos.offset,
                                   static_cast<std::int64_t>(s.sgd->steps())},
                                  torch::kLong));
  out.write("last_loss", doubles({p.last_loss}));
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
  std::ostringstream payload;
  out.save_to(payload);
  const std::string bytes = payload.str();
  const nlohmann::json header = {{"store_id", owner.store_id},
                                 {"run", owner.run},
                                 {"config_sha256", config_hash(s.cfg)},
                                 {"data_sha256", s.data->sha256},
                                 {"next_step", next_step},
                                 {"rows_committed", p.rows_committed},
                                 {"payload_bytes", bytes.size()},
                                 {"payload_sha256", config::Sha256().update(bytes).hex()}};
  const std::string tmp = path + ".tmp";
  write_file(tmp, kMagic + header.dump() + "\n" + bytes);
  std::error_code ec;
  std::filesystem::rename(tmp, path, ec);
  if (ec) throw util::IoError(path + ": cannot put the checkpoint in place: " + ec.message());
}

std::string Trainer::verify_checkpoint(const std::string& path, const CheckpointOwner& owner) const {
  const State& s = *s_;
  auto refuse = [&](const std::string& why) { return CheckpointRefused(path + ": " + why); };
  std::ifstream f(path, std::ios::binary);
  std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  if (!f.good() && !f.eof()) throw refuse("cannot be read");
  if (text.rfind(kMagic, 0) != 0) throw refuse("not an nmech checkpoint (or one from an older nmech)");
  const std::size_t eol = text.find('\n', std::strlen(kMagic));
  if (eol == std::string::npos) throw refuse("truncated inside its header");
  nlohmann::json h;
  try {
    h = nlohmann::json::parse(text.substr(std::strlen(kMagic), eol - std::strlen(kMagic)));
    std::string payload = text.substr(eol + 1);
    const auto want = h.at("payload_bytes").get<std::size_t>();
    if (payload.size() != want)
      throw refuse("truncated: " + std::to_string(payload.size()) + " of " + std::to_string(want) + " bytes");
    if (config::Sha256().update(payload).hex() != h.at("payload_sha256").get<std::string>())
      throw refuse("damaged: its bytes do not match their checksum");
    auto differs = [&](const char* key, const std::string& mine, const std::string& why) {
      const std::string theirs = h.at(key).get<std::string>();
      if (theirs != mine)
        throw refuse(why + " (" + key + " " + short_hash(theirs) + ", expected " + short_hash(mine) + ")");
    };
    differs("store_id", owner.store_id, "belongs to another store, e.g. one deleted and made anew at this path");
    differs("run", owner.run, "belongs to another run");
    differs("config_sha256", config_hash(s.cfg), "was made with another run config");
    differs("data_sha256", s.data->sha256, "was made from other training data");
    const auto next = h.at("next_step").get<std::int64_t>();
    const auto rows = h.at("rows_committed").get<std::int64_t>();
    if (next < 1 || next >= s.cfg.steps) throw refuse("step " + std::to_string(next) + " is outside the run");
    if (rows > owner.rows_committed)
      throw refuse("is ahead of the store (" + std::to_string(rows) + " rows committed, the store has " +
                   std::to_string(owner.rows_committed) + ")");
    return payload;
  } catch (const nlohmann::json::exception& e) {
    throw refuse(std::string("damaged header: ") + e.what());
  }
}

std::int64_t Trainer::load_checkpoint(const std::string& payload, store::Progress& p) {
  State& s = *s_;
  torch::serialize::InputArchive in;
  std::istringstream bytes(payload);
  in.load_from(bytes, torch::kCPU);  // a GPU run's tensors too: copied onto its device below
  const at::Tensor meta = read(in, "meta");
  auto m = meta.accessor<std::int64_t, 1>();
  at::NoGradGuard no_grad;
  for (std::size_t i = 0; i < s.named.size(); ++i) s.named[i].second.copy_(read(in, "param." + std::to_string(i)));
  std::size_t b = 0;
  for (auto& buf : s.net->buffers(true)) buf.copy_(read(in, "buffer." + std::to_string(b++)));
  auto& v = s.sgd->buffers();
  for (std::size_t i = 0; i < v.size(); ++i) {
    at::Tensor t;
    if (in.try_read("momentum." + std::to_string(i), t)) v[i] = t.to(s.device, false, /*copy=*/true);
  }
  s.sgd->set_steps(static_cast<long>(m[5]));
  s.loader = std::make_unique<data::Loader>(s.data->count, s.cfg.seed, data::LoaderPosition{m[3], m[4]});
  s.next.reset();
  s.tracer->load_state(to_doubles(read(in, "tracer")));
  {
    auto gen = at::detail::getDefaultCPUGenerator();
    std::lock_guard<std::mutex> lock(gen.mutex());
    gen.set_state(read(in, "rng"));
  }
  p.rows_committed = m[1];
  p.last_step = m[2];
  p.last_loss = to_doubles(read(in, "last_loss"))[0];
  return m[0];
}

}  // namespace nmech::train
