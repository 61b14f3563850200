#pragma once
// Decodes the image files of the public vessel data sets: TIFF (any compression libtiff reads, LZW
// included) through libtiff; JPEG, PNG, GIF (first frame), binary PPM/PGM and BMP through stb_image; any
// of them gzipped ("im0001.ppm.gz", as STARE ships) through zlib. 16-bit samples are reduced to 8.

#include <filesystem>

#include "vesseltune/data/image.h"

namespace vesseltune::data {

// Grey (and grey + alpha) images come back with 1 channel, colour ones with 3; alpha is dropped.
// Errors name the file and say why it could not be read.
Image decode_image(const std::filesystem::path& path);

// Writes IMAGE (1 channel: grey, as masks are written with 0/255; 3: RGB) as a PNG file: to PATH.tmp, then
// renamed to PATH, so a file under PATH is complete. Errors name the file.
void write_png(const std::filesystem::path& path, const Image& image);

}  // namespace vesseltune::data
