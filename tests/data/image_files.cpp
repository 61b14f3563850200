#include "image_files.h"

#include <gif_lib.h>
#include <stb_image_write.h>
#include <tiffio.h>
#include <zlib.h>

#include <fstream>
#include <iterator>
#include <vector>

#include "vesseltune/core/check.h"

namespace vesseltune::data::testing {

void write_tiff(const std::filesystem::path& path, const Image& image, bool lzw) {
  TIFF* tiff = TIFFOpen(path.c_str(), "w");
  VT_CHECK(tiff, "cannot write ", path.string());
  TIFFSetField(tiff, TIFFTAG_IMAGEWIDTH, image.width);
  TIFFSetField(tiff, TIFFTAG_IMAGELENGTH, image.height);
  TIFFSetField(tiff, TIFFTAG_SAMPLESPERPIXEL, image.channels);
  TIFFSetField(tiff, TIFFTAG_BITSPERSAMPLE, 8);
  TIFFSetField(tiff, TIFFTAG_PHOTOMETRIC, image.channels == 3 ? PHOTOMETRIC_RGB : PHOTOMETRIC_MINISBLACK);
  TIFFSetField(tiff, TIFFTAG_PLANARCONFIG, PLANARCONFIG_CONTIG);
  TIFFSetField(tiff, TIFFTAG_COMPRESSION, lzw ? COMPRESSION_LZW : COMPRESSION_NONE);
  TIFFSetField(tiff, TIFFTAG_ROWSPERSTRIP, 8);
  std::vector<uint8_t> row(static_cast<size_t>(image.width) * image.channels);
  for (int y = 0; y < image.height; ++y) {
    std::copy(image.ptr(y), image.ptr(y) + row.size(), row.begin());
    VT_CHECK(TIFFWriteScanline(tiff, row.data(), static_cast<uint32_t>(y), 0) == 1, "TIFF row ", y);
  }
  TIFFClose(tiff);
}

void write_gif(const std::filesystem::path& path, const Image& grey) {
  VT_CHECK(grey.channels == 1, "write_gif takes grey images");
  int error = 0;
  GifFileType* gif = EGifOpenFileName(path.c_str(), false, &error);
  VT_CHECK(gif, "cannot write ", path.string());
  std::vector<GifColorType> colours(256);
  for (int i = 0; i < 256; ++i) colours[i] = {static_cast<GifByteType>(i), static_cast<GifByteType>(i), static_cast<GifByteType>(i)};
  ColorMapObject* map = GifMakeMapObject(256, colours.data());
  VT_CHECK(EGifPutScreenDesc(gif, grey.width, grey.height, 8, 0, map) == GIF_OK, "GIF screen");
  VT_CHECK(EGifPutImageDesc(gif, 0, 0, grey.width, grey.height, false, nullptr) == GIF_OK, "GIF image");
  std::vector<GifPixelType> row(static_cast<size_t>(grey.width));
  for (int y = 0; y < grey.height; ++y) {
    std::copy(grey.ptr(y), grey.ptr(y) + grey.width, row.begin());
    VT_CHECK(EGifPutLine(gif, row.data(), grey.width) == GIF_OK, "GIF row ", y);
  }
  GifFreeMapObject(map);
  VT_CHECK(EGifCloseFile(gif, &error) == GIF_OK, "GIF close");
}

void write_pnm(const std::filesystem::path& path, const Image& image) {
  std::ofstream out(path, std::ios::binary);
  out << (image.channels == 1 ? "P5" : "P6") << "\n" << image.width << " " << image.height << "\n255\n";
  out.write(reinterpret_cast<const char*>(image.pixels.data()), static_cast<std::streamsize>(image.pixels.size()));
  VT_CHECK(out.good(), "cannot write ", path.string());
}

void write_png(const std::filesystem::path& path, const Image& image) {
  VT_CHECK(stbi_write_png(path.c_str(), image.width, image.height, image.channels, image.pixels.data(),
                          image.width * image.channels),
           "cannot write ", path.string());
}

void write_jpg(const std::filesystem::path& path, const Image& image) {
  VT_CHECK(stbi_write_jpg(path.c_str(), image.width, image.height, image.channels, image.pixels.data(), 100),
           "cannot write ", path.string());
}

void gzip_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  const std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  in.close();
  gzFile out = gzopen((path.string() + ".gz").c_str(), "wb");
  VT_CHECK(out && gzwrite(out, bytes.data(), static_cast<unsigned>(bytes.size())) == static_cast<int>(bytes.size()),
           "cannot gzip ", path.string());
  gzclose(out);
  std::filesystem::remove(path);
}

Image pattern_image(int height, int width, int channels, int variant) {
  Image image(height, width, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) image.at(y, x, c) = static_cast<uint8_t>((x * 7 + y * 13 + c * 50 + variant * 31) % 256);
    }
  }
  return image;
}

Image smooth_image(int height, int width, int channels, int variant) {
  Image image(height, width, channels);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      for (int c = 0; c < channels; ++c) image.at(y, x, c) = static_cast<uint8_t>(40 + x * 2 + y + c * 20 + variant * 5);
    }
  }
  return image;
}

Image pattern_mask(int height, int width, int variant) {
  Image mask(height, width, 1);
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) mask.at(y, x) = ((x + y + variant) % 9 < 3) ? 255 : 0;
  }
  return mask;
}

Image disc_fov(int height, int width) {
  Image fov(height, width, 1);
  const double cy = height / 2.0, cx = width / 2.0, r = std::min(height, width) * 0.45;
  for (int y = 0; y < height; ++y) {
    for (int x = 0; x < width; ++x) {
      const double dy = y + 0.5 - cy, dx = x + 0.5 - cx;
      fov.at(y, x) = dx * dx + dy * dy <= r * r ? 255 : 0;
    }
  }
  return fov;
}

}  // namespace vesseltune::data::testing
