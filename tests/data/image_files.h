#pragma once
// Test-only writers for the file formats the public data sets use, through the same well-kept libraries
// (libtiff, giflib, stb_image_write, zlib), plus the patterns the tests compare against.

#include <filesystem>

#include "vesseltune/data/image.h"

namespace vesseltune::data::testing {

void write_tiff(const std::filesystem::path& path, const Image& image, bool lzw = true);  // else uncompressed
void write_gif(const std::filesystem::path& path, const Image& grey);    // 8-bit grey palette
void write_pnm(const std::filesystem::path& path, const Image& image);   // binary P5 (grey) or P6 (RGB)
void write_png(const std::filesystem::path& path, const Image& image);
void write_jpg(const std::filesystem::path& path, const Image& image);   // quality 100
void gzip_file(const std::filesystem::path& path);                       // path → path.gz, removes path

// Deterministic test content: an image whose pixel values encode position and VARIANT; a mask band of
// 0/255 that differs per VARIANT; a centred disc FOV of 0/255.
Image pattern_image(int height, int width, int channels, int variant);
Image smooth_image(int height, int width, int channels, int variant);  // gentle gradients, for JPEG
Image pattern_mask(int height, int width, int variant);
Image disc_fov(int height, int width);

}  // namespace vesseltune::data::testing
