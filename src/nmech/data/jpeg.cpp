// JPEG decoding with libjpeg(-turbo). libjpeg reports errors through a callback that must not
// return; it longjmps back here, and the error becomes a DataError naming the file.
#include <csetjmp>
#include <cstdio>
// jpeglib.h needs FILE and size_t declared first
#include <jpeglib.h>

#include <memory>

#include "nmech/data/prepare.hpp"

namespace nmech::data {

namespace {

struct ErrorManager {
  jpeg_error_mgr pub;
  std::jmp_buf jump;
  char message[JMSG_LENGTH_MAX];
};

void on_error(j_common_ptr cinfo) {
  auto* err = reinterpret_cast<ErrorManager*>(cinfo->err);
  (*cinfo->err->format_message)(cinfo, err->message);
  std::longjmp(err->jump, 1);
}

}  // namespace

Image decode_jpeg(const std::string& path) {
  std::unique_ptr<FILE, int (*)(FILE*)> f(std::fopen(path.c_str(), "rb"), &std::fclose);
  if (!f) throw DataError(path + ": cannot open");
  jpeg_decompress_struct cinfo{};
  ErrorManager err{};
  cinfo.err = jpeg_std_error(&err.pub);
  err.pub.error_exit = on_error;
  Image img;  // declared before setjmp: no object with a destructor is created after it
  std::vector<JSAMPLE> line;
  if (setjmp(err.jump)) {
    jpeg_destroy_decompress(&cinfo);
    throw DataError(path + ": not a readable JPEG (" + err.message + ")");
  }
  jpeg_create_decompress(&cinfo);
  jpeg_stdio_src(&cinfo, f.get());
  jpeg_read_header(&cinfo, TRUE);
  cinfo.out_color_space = cinfo.num_components == 1 ? JCS_GRAYSCALE : JCS_RGB;
  jpeg_start_decompress(&cinfo);
  img.height = cinfo.output_height;
  img.width = cinfo.output_width;
  const int comps = cinfo.output_components;
  img.rgb.resize(static_cast<size_t>(img.height * img.width * 3));
  line.resize(static_cast<size_t>(img.width * comps));
  for (std::int64_t y = 0; cinfo.output_scanline < cinfo.output_height; ++y) {
    JSAMPROW row = line.data();
    jpeg_read_scanlines(&cinfo, &row, 1);
    for (std::int64_t x = 0; x < img.width; ++x)
      for (int c = 0; c < 3; ++c)
        img.rgb[static_cast<size_t>((y * img.width + x) * 3 + c)] = line[static_cast<size_t>(x * comps + (comps == 1 ? 0 : c))];
  }
  jpeg_finish_decompress(&cinfo);
  jpeg_destroy_decompress(&cinfo);
  return img;
}

}  // namespace nmech::data
