#include "mini_tiny_imagenet.hpp"

#include <gtest/gtest.h>
#include <jpeglib.h>

#include <cstdio>
#include <fstream>

#include "run_fixture.hpp"

namespace fs = std::filesystem;

namespace nmech::test {

void write_jpeg(const fs::path& path, int w, int h, int comps, const std::vector<std::uint8_t>& px) {
  fs::create_directories(path.parent_path());
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  jpeg_compress_struct c{};
  jpeg_error_mgr err{};
  c.err = jpeg_std_error(&err);
  jpeg_create_compress(&c);
  jpeg_stdio_dest(&c, f);
  c.image_width = w, c.image_height = h, c.input_components = comps;
  c.in_color_space = comps == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_set_defaults(&c);
  jpeg_set_quality(&c, 100, TRUE);
  for (int i = 0; i < c.num_components; ++i) c.comp_info[i].h_samp_factor = c.comp_info[i].v_samp_factor = 1;
  jpeg_start_compress(&c, TRUE);
  for (int y = 0; y < h; ++y) {
    JSAMPROW row = const_cast<JSAMPLE*>(px.data() + static_cast<size_t>(y * w * comps));
    jpeg_write_scanlines(&c, &row, 1);
  }
  jpeg_finish_compress(&c);
  jpeg_destroy_compress(&c);
  std::fclose(f);
}

std::vector<std::uint8_t> pattern(int id, int size, int comps) {
  std::vector<std::uint8_t> px(static_cast<size_t>(size * size * comps));
  for (int y = 0; y < size; ++y)
    for (int x = 0; x < size; ++x)
      for (int c = 0; c < comps; ++c)
        px[static_cast<size_t>((y * size + x) * comps + c)] = static_cast<std::uint8_t>((40 * id + 2 * x + y + 60 * c) % 256);
  return px;
}

Mini write_mini(const std::string& name) {
  Mini m;
  m.root = fs::path(nmech::test::work_dir()) / name;
  fs::remove_all(m.root);
  fs::create_directories(m.root);
  std::ofstream(m.root / "wnids.txt") << m.wnids[0] << "\n" << m.wnids[1] << "\n" << m.wnids[2] << "\n";
  int id = 0;
  for (std::int64_t l = 0; l < 3; ++l)
    for (int i = 0; i < 2; ++i) {
      const fs::path f = m.root / "train" / m.wnids[l] / "images" / (m.wnids[l] + "_" + std::to_string(i) + ".JPEG");
      const int comps = (l == 1 && i == 1) ? 1 : 3;  // Tiny ImageNet has grey images too
      write_jpeg(f, 64, 64, comps, pattern(id++, 64, comps));
      m.train.push_back({f, l});
    }
  fs::create_directories(m.root / "val" / "images");
  std::ofstream ann(m.root / "val" / "val_annotations.txt");
  for (int i = 0; i < 4; ++i) {
    const std::int64_t l = (i * 2) % 3;
    const fs::path f = m.root / "val" / "images" / ("val_" + std::to_string(i) + ".JPEG");
    write_jpeg(f, 64, 64, 3, pattern(id++, 64, 3));
    ann << f.filename().string() << "\t" << m.wnids[l] << "\t0\t0\t63\t63\n" << std::flush;
    m.val.push_back({f, l});
  }
  return m;
}

}  // namespace nmech::test
