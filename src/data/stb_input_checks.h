#pragma once
// Files that stb_image would decode wrongly or unsafely, refused before it sees them (data/ internal): files cut
// short that it accepts (GIF, binary PNM) and JPEG Huffman tables that Debian's stb_image (2.27) writes past
// (found by the decoder fuzzer, tests/data/fuzz_image_decoders.cpp).

#include <cstdint>
#include <string>
#include <vector>

namespace vesseltune::data {

// What is wrong with BYTES ("" when nothing these checks know of).
std::string stb_input_damage(const std::vector<uint8_t>& bytes);

}  // namespace vesseltune::data
