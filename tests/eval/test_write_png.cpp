// write_png (data/codec.h) read back with decode_image; masks as 0/255 grey PNG.
#include <gtest/gtest.h>

#include <filesystem>

#include "vesseltune/core/check.h"
#include "vesseltune/data/codec.h"
#include "vesseltune/eval/overlay.h"

namespace vesseltune::eval {
namespace {

namespace fs = std::filesystem;

fs::path fresh_directory() {
  const fs::path directory = fs::temp_directory_path() / "vesseltune_eval_png";
  fs::remove_all(directory);
  fs::create_directories(directory);
  return directory;
}

TEST(WritePng, RoundTripsRgbAndGrey) {
  const fs::path directory = fresh_directory();
  for (const int channels : {3, 1}) {
    data::Image image(5, 7, channels);
    for (size_t i = 0; i < image.pixels.size(); ++i) image.pixels[i] = static_cast<uint8_t>(i * 37 + 11);
    const fs::path path = directory / ("image" + std::to_string(channels) + ".png");
    data::write_png(path, image);
    EXPECT_FALSE(fs::exists(path.string() + ".tmp"));
    const data::Image back = data::decode_image(path);
    EXPECT_EQ(back.height, 5);
    EXPECT_EQ(back.width, 7);
    EXPECT_EQ(back.channels, channels);
    EXPECT_EQ(back.pixels, image.pixels);
  }
}

TEST(WritePng, MasksAreWrittenAs0And255) {
  const at::Tensor mask = at::tensor({0, 1, 1, 0, 0, 1}, at::kByte).reshape({2, 3});
  const fs::path path = fresh_directory() / "mask.png";
  data::write_png(path, mask_image(mask));
  const data::Image back = data::decode_image(path);
  EXPECT_EQ(back.channels, 1);
  EXPECT_EQ(back.pixels, (std::vector<uint8_t>{0, 255, 255, 0, 0, 255}));
  EXPECT_THROW(mask_image(mask * 2), Error);
}

TEST(WritePng, ErrorsNameTheFile) {
  try {
    data::write_png("/nonexistent/dir/out.png", data::Image(2, 2, 3));
    FAIL() << "no error";
  } catch (const Error& error) {
    EXPECT_NE(std::string(error.what()).find("/nonexistent/dir/out.png"), std::string::npos) << error.what();
  }
  EXPECT_THROW(data::write_png(fresh_directory() / "two.png", data::Image(2, 2, 2)), Error);
}

}  // namespace
}  // namespace vesseltune::eval
