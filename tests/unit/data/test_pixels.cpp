#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "nmech/data/dataset.hpp"
#include "nmech/data/pixels.hpp"

namespace nmech::data {
namespace {

std::string write_bytes(const std::string& name, std::size_t n) {
  const auto path = (std::filesystem::temp_directory_path() / name).string();
  std::ofstream f(path, std::ios::binary);
  for (std::size_t i = 0; i < n; ++i) f.put(static_cast<char>((i * 31 + 7) % 251));
  return path;
}

TEST(Pixels, MapsARegionAtAnyOffset) {
  const std::string path = write_bytes("nmech_pixels_test.bin", 3 * 4096 + 100);
  for (const std::uint64_t offset : {0ull, 1ull, 4095ull, 4096ull, 5000ull}) {
    const Pixels p = Pixels::map_file(path, offset, 7000);
    ASSERT_TRUE(p.mapped());
    ASSERT_EQ(p.size(), 7000u);
    std::size_t wrong = 0;
    for (std::size_t i = 0; i < p.size(); ++i) wrong += p[i] != static_cast<std::uint8_t>(((offset + i) * 31 + 7) % 251);
    EXPECT_EQ(wrong, 0u) << "offset " << offset;
  }
  // Copies share the map, which outlives the original.
  Pixels copy;
  {
    const Pixels p = Pixels::map_file(path, 10, 20);
    copy = p;
  }
  EXPECT_EQ(copy[0], static_cast<std::uint8_t>((10 * 31 + 7) % 251));
  EXPECT_THROW(copy.owned(), std::logic_error);
  std::filesystem::remove(path);
}

TEST(Pixels, MissingFileNamesIt) {
  try {
    Pixels::map_file("/nonexistent/dir/packed.h5", 0, 10);
    FAIL() << "no error";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/dir/packed.h5"), std::string::npos) << e.what();
  }
}

TEST(Pixels, OwnedPixelsAreWritable) {
  Pixels p(std::vector<std::uint8_t>{1, 2, 3});
  p.owned()[1] = 9;
  EXPECT_FALSE(p.mapped());
  EXPECT_EQ(p[1], 9);
  EXPECT_EQ(p.size(), 3u);
}

}  // namespace
}  // namespace nmech::data
