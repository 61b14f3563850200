#include "stb_input_checks.h"

#include <algorithm>
#include <cctype>
#include <cstring>

namespace vesseltune::data {
namespace {

bool starts_with(const std::vector<uint8_t>& bytes, const char* magic) {
  const size_t n = std::strlen(magic);
  return bytes.size() >= n && std::equal(magic, magic + n, bytes.begin());
}

// Binary PNM (P5/P6): the bytes after the header (magic, width, height, maxval, one whitespace) that the pixels need.
// stb_image fills what a cut file lacks without an error. Empty when BYTES are no binary PNM; else a message.
std::string pnm_shortfall(const std::vector<uint8_t>& bytes) {
  if (!starts_with(bytes, "P5") && !starts_with(bytes, "P6")) return "";
  size_t at = 2;
  int64_t fields[3] = {0, 0, 0};
  for (int64_t& field : fields) {
    while (at < bytes.size() && (std::isspace(bytes[at]) || bytes[at] == '#')) {
      if (bytes[at] == '#') {
        while (at < bytes.size() && bytes[at] != '\n') ++at;
      } else {
        ++at;
      }
    }
    while (at < bytes.size() && std::isdigit(bytes[at])) {
      field = field * 10 + (bytes[at++] - '0');
      if (field > (int64_t{1} << 24)) return "a PNM header value beyond 2^24";  // and no overflow below
    }
  }
  ++at;  // the single whitespace before the pixels
  const int64_t sample_bytes = fields[2] > 255 ? 2 : 1, channels = bytes[1] == '6' ? 3 : 1;
  const int64_t needed = fields[0] * fields[1] * channels * sample_bytes;
  const int64_t present = static_cast<int64_t>(bytes.size()) - static_cast<int64_t>(at);
  if (present >= needed) return "";
  return "truncated PNM: " + std::to_string(present) + " of " + std::to_string(needed) + " pixel bytes";
}

// Formats whose decoder accepts a file cut short: the check that it is whole ("" when it is, or not that format).
std::string truncation(const std::vector<uint8_t>& bytes) {
  // A GIF ends with its trailer byte ';' (0x3B), before any zero padding; stb_image decodes the rows it has and
  // leaves the rest. (A cut that happens to end on 0x3B passes this check.)
  if (starts_with(bytes, "GIF87a") || starts_with(bytes, "GIF89a")) {
    const auto last = std::find_if(bytes.rbegin(), bytes.rend(), [](uint8_t b) { return b != 0; });
    if (last == bytes.rend() || *last != 0x3B) return "truncated GIF: no trailer";
  }
  return pnm_shortfall(bytes);
}

// A JPEG's Huffman tables (DHT segments, before or between scans) each list at most 256 codes.
std::string jpeg_huffman_damage(const std::vector<uint8_t>& bytes) {
  if (bytes.size() < 4 || bytes[0] != 0xFF || bytes[1] != 0xD8) return "";
  size_t at = 2;
  while (at + 4 <= bytes.size()) {
    if (bytes[at] != 0xFF || bytes[at + 1] == 0x00 || bytes[at + 1] == 0xFF ||
        (bytes[at + 1] >= 0xD0 && bytes[at + 1] <= 0xD7)) {
      ++at;  // entropy-coded data, stuffing, fill bytes and restart markers: on to the next marker
      continue;
    }
    const uint8_t marker = bytes[at + 1];
    if (marker == 0xD9) return "";  // end of image
    const size_t length = static_cast<size_t>(bytes[at + 2]) << 8 | bytes[at + 3];
    // stb reads each table the segment's length announces, past the segment and the file too (as zeros).
    for (size_t table = at + 4; marker == 0xC4 && table < at + 2 + length;) {
      size_t codes = 0;
      for (size_t i = 1; i <= 16 && table + i < bytes.size(); ++i) codes += bytes[table + i];
      if (codes > 256) return "a damaged JPEG Huffman table (" + std::to_string(codes) + " codes, at most 256)";
      table += 17 + codes;
    }
    at += 2 + std::max<size_t>(length, 2);
  }
  return "";
}

}  // namespace

std::string stb_input_damage(const std::vector<uint8_t>& bytes) {
  const std::string cut = truncation(bytes);
  return cut.empty() ? jpeg_huffman_damage(bytes) : cut;
}

}  // namespace vesseltune::data
