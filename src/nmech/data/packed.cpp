#include "nmech/data/packed.hpp"

#include <hdf5.h>

#include <cmath>
#include <filesystem>

#include "nmech/store/h5_util.hpp"

namespace nmech::data {

namespace h5 = nmech::store::detail;

namespace {

constexpr std::size_t kClassIdBytes = 64;

void write_array(hid_t loc, const std::string& name, hid_t type, const std::vector<hsize_t>& dims, const void* data,
                 const std::string& where) {
  h5::Handle space = h5::check_space(H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr), where);
  h5::Handle ds = h5::check_dataset(H5Dcreate2(loc, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
                                    where + ": create " + name);
  if (data != nullptr) h5::check(H5Dwrite(ds, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data), where + ": write " + name);
}

void write_split(hid_t file, const std::string& name, const Packed& p, const PackedSplit& s, const std::string& where) {
  h5::Handle g = h5::check_group(H5Gcreate2(file, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), where);
  const auto n = static_cast<hsize_t>(s.count);
  write_array(g, "images", H5T_NATIVE_UINT8,
              {n, static_cast<hsize_t>(p.channels), static_cast<hsize_t>(p.height), static_cast<hsize_t>(p.width)},
              s.pixels.empty() ? nullptr : s.pixels.data(), where);
  write_array(g, "labels", H5T_NATIVE_INT64, {n}, s.labels.empty() ? nullptr : s.labels.data(), where);
}

// Per-channel mean and standard deviation of the pixels scaled to [0, 1].
void channel_stats(const Packed& p, std::vector<double>& mean, std::vector<double>& stdv) {
  const std::int64_t plane = p.height * p.width;
  mean.assign(static_cast<size_t>(p.channels), 0.0);
  stdv.assign(static_cast<size_t>(p.channels), 0.0);
  for (std::int64_t c = 0; c < p.channels; ++c) {
    double s = 0, ss = 0;
    for (std::int64_t i = 0; i < p.train.count; ++i) {
      const std::uint8_t* px = p.train.pixels.data() + (i * p.channels + c) * plane;
      for (std::int64_t k = 0; k < plane; ++k) {
        const double v = px[k] / 255.0;
        s += v;
        ss += v * v;
      }
    }
    const double n = static_cast<double>(std::max<std::int64_t>(1, p.train.count * plane));
    mean[static_cast<size_t>(c)] = s / n;
    stdv[static_cast<size_t>(c)] = std::sqrt(std::max(0.0, ss / n - (s / n) * (s / n)));
  }
}

// The images as a map of the file where they lie contiguous and unfiltered as uint8 (what
// write_packed makes), read into memory otherwise.
Pixels image_pixels(hid_t images, const std::string& path, std::size_t bytes) {
  if (bytes == 0) return {};
  h5::Handle plist = h5::check_plist(H5Dget_create_plist(images), path + ": images' creation properties");
  h5::Handle type = h5::check_type(H5Dget_type(images), path + ": images' type");
  const haddr_t offset = H5Dget_offset(images);
  const bool plain_bytes = H5Pget_layout(plist) == H5D_CONTIGUOUS && H5Pget_nfilters(plist) == 0 &&
                           H5Tget_class(type) == H5T_INTEGER && H5Tget_size(type) == 1 && H5Tget_sign(type) == H5T_SGN_NONE;
  // A file replaced while mapped (prepare-data renames a new one over it) stays mapped as it was.
  if (plain_bytes && offset != HADDR_UNDEF && H5Dget_storage_size(images) == bytes) return Pixels::map_file(path, offset, bytes);
  std::vector<std::uint8_t> owned(bytes);
  h5::check(H5Dread(images, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, owned.data()), path + ": read images");
  return owned;
}

std::vector<std::int64_t> shape_of(hid_t ds, const std::string& where) {
  const std::vector<hsize_t> d = h5::dims_of(ds, where);
  return {d.begin(), d.end()};
}

}  // namespace

void write_packed(const std::string& path, const Packed& p) {
  h5::quiet_hdf5_errors();
  const std::string tmp = path + ".partial";
  std::filesystem::remove(tmp);
  try {
    h5::Handle file = h5::check_file(H5Fcreate(tmp.c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT),
                                     tmp + ": cannot create (is the directory writable?)");
    h5::write_string_attr(file, "format", "nmech-packed-dataset", tmp);
    h5::write_attr(file, "version", std::int64_t{1}, tmp);
    h5::write_string_attr(file, "name", p.name, tmp);
    std::vector<char> ids(p.classes.size() * kClassIdBytes, '\0');
    for (size_t i = 0; i < p.classes.size(); ++i) p.classes[i].copy(ids.data() + i * kClassIdBytes, kClassIdBytes - 1);
    h5::Handle str = h5::fixed_string_type(kClassIdBytes);
    write_array(file, "classes", str, {static_cast<hsize_t>(p.classes.size())}, ids.data(), tmp);
    std::vector<double> mean, stdv;
    channel_stats(p, mean, stdv);
    write_array(file, "mean", H5T_NATIVE_DOUBLE, {mean.size()}, mean.data(), tmp);
    write_array(file, "std", H5T_NATIVE_DOUBLE, {stdv.size()}, stdv.data(), tmp);
    write_split(file, "train", p, p.train, tmp);
    write_split(file, "val", p, p.val, tmp);
    h5::check(H5Fclose(file.release()), tmp + ": close");
  } catch (const store::StoreError& e) {
    std::filesystem::remove(tmp);
    throw DataError(e.what());
  }
  std::error_code ec, ignored;
  std::filesystem::rename(tmp, path, ec);
  if (ec) {
    std::filesystem::remove(tmp, ignored);
    throw DataError(path + ": cannot put the prepared file there: " + ec.message());
  }
}

Dataset load_packed(const std::string& path, const std::string& split) {
  h5::quiet_hdf5_errors();
  if (!std::filesystem::is_regular_file(path)) throw DataError(path + ": no such packed dataset (nmech prepare-data makes one)");
  if (split != "train" && split != "val") throw DataError(path + ": no split '" + split + "'");
  Dataset d;
  try {
    h5::Handle file = h5::check_file(H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT), path + ": not an HDF5 file");
    if (H5Aexists(file, "format") <= 0 || h5::read_attr_text(file, "format", path) != "nmech-packed-dataset")
      throw DataError(path + ": not a packed dataset (nmech prepare-data makes one)");
    d.name = h5::read_attr_text(file, "name", path) + (split == "val" ? " (val)" : "");
    h5::Handle images = h5::check_dataset(H5Dopen2(file, ("/" + split + "/images").c_str(), H5P_DEFAULT), path + ": images");
    h5::Handle labels = h5::check_dataset(H5Dopen2(file, ("/" + split + "/labels").c_str(), H5P_DEFAULT), path + ": labels");
    const auto dims = shape_of(images, path);
    if (dims.size() != 4 || shape_of(labels, path) != std::vector<std::int64_t>{dims[0]})
      throw DataError(path + ": /" + split + " images and labels disagree in shape");
    d.count = dims[0], d.channels = dims[1], d.height = dims[2], d.width = dims[3];
    d.pixels = image_pixels(images, path, static_cast<std::size_t>(d.count * d.channels * d.height * d.width));
    d.labels.resize(static_cast<size_t>(d.count));
    if (d.count > 0)
      h5::check(H5Dread(labels, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, d.labels.data()), path + ": read labels");
    h5::Handle classes = h5::check_dataset(H5Dopen2(file, "/classes", H5P_DEFAULT), path + ": classes");
    d.classes = shape_of(classes, path).at(0);
    for (const char* name : {"mean", "std"}) {
      h5::Handle ds = h5::check_dataset(H5Dopen2(file, name, H5P_DEFAULT), path + ": " + name);
      std::vector<double> v(static_cast<size_t>(d.channels));
      h5::check(H5Dread(ds, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v.data()), path + ": read " + name);
      (name[0] == 'm' ? d.mean : d.std) = v;
    }
  } catch (const store::StoreError& e) {
    throw DataError(e.what());
  }
  for (auto l : d.labels)
    if (l < 0 || l >= d.classes) throw DataError(path + ": label " + std::to_string(l) + " outside 0.." + std::to_string(d.classes - 1));
  return d;
}

}  // namespace nmech::data
