#include "nmech/data/prepare.hpp"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

namespace fs = std::filesystem;

namespace nmech::data {

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw DataError(path + ": missing");
  std::vector<std::string> out;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
    if (!line.empty()) out.push_back(line);
  }
  return out;
}

// One decoded 64×64 image appended to a split as CHW planes.
void append_image(PackedSplit& s, const std::string& path, std::int64_t label, std::int64_t size) {
  const Image img = decode_jpeg(path);
  if (img.height != size || img.width != size)
    throw DataError(path + ": " + std::to_string(img.width) + "×" + std::to_string(img.height) + " pixels, expected " +
                    std::to_string(size) + "×" + std::to_string(size));
  const std::int64_t plane = size * size;
  const size_t at = s.pixels.size();
  s.pixels.resize(at + static_cast<size_t>(3 * plane));
  for (std::int64_t k = 0; k < plane; ++k)
    for (int c = 0; c < 3; ++c) s.pixels[at + static_cast<size_t>(c * plane + k)] = img.rgb[static_cast<size_t>(k * 3 + c)];
  s.labels.push_back(label);
  ++s.count;
}

std::vector<fs::path> jpegs_in(const fs::path& dir) {
  if (!fs::is_directory(dir)) throw DataError(dir.string() + ": missing");
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.is_regular_file() && e.path().extension() == ".JPEG") files.push_back(e.path());
  std::sort(files.begin(), files.end());  // a fixed order, whatever the file system's
  return files;
}

}  // namespace

Packed read_tiny_imagenet(const std::string& src) {
  constexpr std::int64_t kSize = 64;
  Packed p;
  p.name = "tiny-imagenet";
  p.height = p.width = kSize;
  p.classes = read_lines((fs::path(src) / "wnids.txt").string());
  if (p.classes.empty()) throw DataError((fs::path(src) / "wnids.txt").string() + ": no classes");
  std::map<std::string, std::int64_t> label;
  for (size_t i = 0; i < p.classes.size(); ++i) label[p.classes[i]] = static_cast<std::int64_t>(i);
  for (size_t i = 0; i < p.classes.size(); ++i) {
    const fs::path dir = fs::path(src) / "train" / p.classes[i] / "images";
    if (!fs::is_directory(dir)) throw DataError(dir.string() + ": missing (class " + p.classes[i] + " of wnids.txt)");
    const auto files = jpegs_in(dir);
    if (files.empty()) throw DataError(dir.string() + ": no .JPEG images (class " + p.classes[i] + ")");
    for (const auto& f : files) append_image(p.train, f.string(), static_cast<std::int64_t>(i), kSize);
  }
  const fs::path ann = fs::path(src) / "val" / "val_annotations.txt";
  std::int64_t line_no = 0;
  for (const auto& line : read_lines(ann.string())) {
    ++line_no;
    std::istringstream fields(line);
    std::string file, wnid;
    std::getline(fields, file, '\t');
    std::getline(fields, wnid, '\t');
    const auto it = label.find(wnid);
    if (file.empty() || it == label.end())
      throw DataError(ann.string() + ":" + std::to_string(line_no) + ": class '" + wnid + "' is not in wnids.txt");
    append_image(p.val, (fs::path(src) / "val" / "images" / file).string(), it->second, kSize);
  }
  return p;
}

namespace {

// CIFAR binary records: label byte(s) then 3072 bytes, 1024 per channel (R, G, B), row-major.
void read_cifar_file(const std::string& path, int label_bytes, PackedSplit& s, std::int64_t classes) {
  constexpr std::int64_t kImage = 3 * 32 * 32;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw DataError(path + ": missing");
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  const std::int64_t record = label_bytes + kImage;
  if (bytes.empty() || static_cast<std::int64_t>(bytes.size()) % record != 0)
    throw DataError(path + ": " + std::to_string(bytes.size()) + " bytes is not a whole number of " +
                    std::to_string(record) + "-byte records (truncated?)");
  const std::int64_t n = static_cast<std::int64_t>(bytes.size()) / record;
  for (std::int64_t i = 0; i < n; ++i) {
    const auto* r = reinterpret_cast<const std::uint8_t*>(bytes.data()) + i * record;
    const std::int64_t label = r[label_bytes - 1];  // CIFAR-100: coarse, then fine
    if (label >= classes)
      throw DataError(path + ": record " + std::to_string(i) + " has label " + std::to_string(label) + " of " +
                      std::to_string(classes) + " classes");
    s.labels.push_back(label);
    s.pixels.insert(s.pixels.end(), r + label_bytes, r + record);
    ++s.count;
  }
}

}  // namespace

Packed read_cifar(const std::string& src, int classes) {
  if (classes != 10 && classes != 100) throw DataError("CIFAR has 10 or 100 classes, not " + std::to_string(classes));
  Packed p;
  p.name = classes == 10 ? "cifar10" : "cifar100";
  p.height = p.width = 32;
  const fs::path dir(src);
  p.classes = read_lines((dir / (classes == 10 ? "batches.meta.txt" : "fine_label_names.txt")).string());
  if (static_cast<int>(p.classes.size()) != classes)
    throw DataError((dir / (classes == 10 ? "batches.meta.txt" : "fine_label_names.txt")).string() + ": " +
                    std::to_string(p.classes.size()) + " class names, expected " + std::to_string(classes));
  if (classes == 10) {
    for (int b = 1; b <= 5; ++b) read_cifar_file((dir / ("data_batch_" + std::to_string(b) + ".bin")).string(), 1, p.train, 10);
    read_cifar_file((dir / "test_batch.bin").string(), 1, p.val, 10);
  } else {
    read_cifar_file((dir / "train.bin").string(), 2, p.train, 100);
    read_cifar_file((dir / "test.bin").string(), 2, p.val, 100);
  }
  return p;
}

Packed prepare_data(const std::string& kind, const std::string& src, const std::string& out) {
  Packed p;
  if (kind == "tiny-imagenet") p = read_tiny_imagenet(src);
  else if (kind == "cifar10") p = read_cifar(src, 10);
  else if (kind == "cifar100") p = read_cifar(src, 100);
  else throw DataError("prepare-data: unknown dataset '" + kind + "' (tiny-imagenet, cifar10, cifar100)");
  write_packed(out, p);
  return p;
}

}  // namespace nmech::data
