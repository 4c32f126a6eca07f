#include <zlib.h>

#include <array>
#include <memory>

#include "nmech/data/dataset.hpp"

namespace nmech::data {

namespace {

// Reads a whole IDX file; gzip or plain (gzread handles both).
std::vector<std::uint8_t> read_gz(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (!f) throw DataError(path + ": cannot open (Debian package dataset-fashion-mnist provides it)");
  std::unique_ptr<gzFile_s, decltype(&gzclose)> guard(f, &gzclose);
  std::vector<std::uint8_t> out;
  std::array<std::uint8_t, 1 << 16> buf{};
  for (;;) {
    const int n = gzread(f, buf.data(), buf.size());
    if (n < 0) {
      int err = 0;
      throw DataError(path + ": unreadable: " + gzerror(f, &err));
    }
    if (n == 0) break;
    out.insert(out.end(), buf.begin(), buf.begin() + n);
  }
  // A truncated .gz reads short without error: the header check below catches it.
  return out;
}

std::uint32_t be32(const std::vector<std::uint8_t>& b, std::size_t off) {
  return (std::uint32_t(b[off]) << 24) | (std::uint32_t(b[off + 1]) << 16) |
         (std::uint32_t(b[off + 2]) << 8) | std::uint32_t(b[off + 3]);
}

std::vector<std::uint8_t> read_idx(const std::string& path, std::uint32_t magic,
                                   std::vector<std::uint32_t>& dims) {
  auto b = read_gz(path);
  const std::size_t ndim = magic & 0xff;
  if (b.size() < 4 + 4 * ndim || be32(b, 0) != magic)
    throw DataError(path + ": not an IDX file of the expected kind (bad header)");
  std::size_t total = 1;
  dims.clear();
  for (std::size_t i = 0; i < ndim; ++i) {
    dims.push_back(be32(b, 4 + 4 * i));
    total *= dims.back();
  }
  const std::size_t header = 4 + 4 * ndim;
  if (b.size() != header + total)
    throw DataError(path + ": truncated or damaged (" + std::to_string(b.size() - header) +
                    " data bytes, expected " + std::to_string(total) + ")");
  return {b.begin() + header, b.end()};
}

std::string find_file(const std::string& dir, const std::string& stem) {
  const std::string gz = dir + "/" + stem + ".gz";
  if (gzFile f = gzopen(gz.c_str(), "rb")) {
    gzclose(f);
    return gz;
  }
  return dir + "/" + stem;  // plain IDX; read_gz reports a missing file by this name
}

}  // namespace

Dataset load_fashion_mnist(const std::string& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  std::vector<std::uint32_t> idims, ldims;
  Dataset d;
  d.name = "fashion-mnist";
  d.pixels = read_idx(find_file(dir, prefix + "-images-idx3-ubyte"), 0x00000803, idims);
  auto labels = read_idx(find_file(dir, prefix + "-labels-idx1-ubyte"), 0x00000801, ldims);
  if (idims[0] != ldims[0])
    throw DataError(dir + ": " + std::to_string(idims[0]) + " images but " +
                    std::to_string(ldims[0]) + " labels");
  d.count = idims[0];
  d.height = idims[1];
  d.width = idims[2];
  d.labels.assign(labels.begin(), labels.end());
  for (auto l : d.labels)
    if (l >= d.classes) throw DataError(dir + ": label " + std::to_string(l) + " out of range");
  d.mean = {0.2860};
  d.std = {0.3530};
  return d;
}

}  // namespace nmech::data
