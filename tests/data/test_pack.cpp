// vesseltune-pack: every layout and file format packs and reads back the pixels it was given; each kind of
// bad input fails naming its file; failed or killed packs leave nothing that looks complete; the reader
// refuses shards that disagree with their manifest.

#include <gtest/gtest.h>
#include <hdf5.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "hdf5_damage.h"
#include "image_files.h"
#include "vesseltune/core/remove_tree.h"
#include "vesseltune/core/check.h"
#include "vesseltune/data/checksum.h"
#include "vesseltune/data/packed_dataset.h"
#include "vesseltune/data/packer.h"

namespace vesseltune::data {
namespace {

namespace fs = std::filesystem;
using namespace testing;

class PackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = fs::temp_directory_path() / ("vt_pack_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    remove_tree(root_.string());
    fs::create_directories(root_);
  }
  void TearDown() override { remove_tree(root_.string()); }

  fs::path dir(const fs::path& relative) {
    fs::create_directories(root_ / relative);
    return root_ / relative;
  }

  PackOptions options() {
    PackOptions o;
    o.threads = 2;
    o.shards.samples_per_shard = 2;
    o.val_fraction = 0.0;
    return o;
  }

  // What a sample must read back as.
  struct Expected {
    Image image;  // as written (grey or RGB)
    Image mask;   // 0/255 (grey)
    Image fov;    // 0/255, or empty: all ones
    std::string split;
    int tolerance = 0;  // JPEG
  };

  // Packs SOURCE, reads every sample back and compares it with EXPECTED (by source file name).
  void pack_and_compare(const fs::path& source, const std::map<std::string, Expected>& expected,
                        const std::string& layout_name, PackOptions o) {
    const fs::path out = root_ / "out";
    remove_tree(out.string());
    const PackReport report = pack_dataset(source, out, o);
    EXPECT_TRUE(report.skipped.empty());
    PackedDataset dataset(out);
    ASSERT_EQ(dataset.size(), static_cast<int64_t>(expected.size()));
    for (int64_t i = 0; i < dataset.size(); ++i) {
      const SampleRecord record = dataset.read(i);
      const std::string name = fs::path(record.source).filename().string();
      SCOPED_TRACE(layout_name + " " + record.source);
      ASSERT_EQ(expected.count(name), 1u) << "unexpected sample " << record.source;
      const Expected& e = expected.at(name);
      EXPECT_EQ(record.dataset, o.dataset_name.empty() ? layout_name : o.dataset_name);
      EXPECT_EQ(record.split, e.split);
      ASSERT_EQ(record.image.height, e.image.height);
      ASSERT_EQ(record.image.width, e.image.width);
      EXPECT_EQ(record.original_height, e.image.height);
      EXPECT_EQ(record.original_width, e.image.width);
      int worst = 0;
      for (int y = 0; y < e.image.height; ++y) {
        for (int x = 0; x < e.image.width; ++x) {
          for (int c = 0; c < 3; ++c) {
            const int want = e.image.at(y, x, e.image.channels == 1 ? 0 : c);
            worst = std::max(worst, std::abs(record.image.at(y, x, c) - want));
          }
          ASSERT_EQ(record.mask.at(y, x), e.mask.at(y, x) ? 1 : 0) << "mask at " << y << "," << x;
          ASSERT_EQ(record.fov.at(y, x), e.fov.empty() || e.fov.at(y, x) ? 1 : 0) << "fov at " << y << "," << x;
        }
      }
      EXPECT_LE(worst, e.tolerance);
    }
  }

  fs::path root_;
};

Image rgb_of(const Image& grey) {
  Image rgb(grey.height, grey.width, 3);
  for (size_t i = 0; i < grey.pixels.size(); ++i) rgb.pixels[3 * i] = rgb.pixels[3 * i + 1] = rgb.pixels[3 * i + 2] = grey.pixels[i];
  return rgb;
}

constexpr int H = 20, W = 27;  // not square, so that a transposition shows

TEST_F(PackTest, DriveTifAndGifWithOfficialSplit) {
  std::map<std::string, Expected> expected;
  for (const auto& [folder, stem, number, split, v] :
       {std::tuple{"training", "21_training", "21", "train", 1}, std::tuple{"test", "01_test", "01", "val", 2}}) {
    Expected e{pattern_image(H, W, 3, v), pattern_mask(H, W, v), disc_fov(H, W), split};
    write_tiff(dir(std::string(folder) + "/images") / (std::string(stem) + ".tif"), e.image);
    write_gif(dir(std::string(folder) + "/1st_manual") / (std::string(number) + "_manual1.gif"), e.mask);
    write_gif(dir(std::string(folder) + "/mask") / (std::string(stem) + "_mask.gif"), e.fov);
    expected[std::string(stem) + ".tif"] = e;
  }
  EXPECT_EQ(detect_layout(root_), Layout::drive);
  pack_and_compare(root_, expected, "DRIVE", options());
}

TEST_F(PackTest, StareGzippedPpmWithLabelsAh) {
  std::map<std::string, Expected> expected;
  for (int v = 1; v <= 2; ++v) {
    const std::string stem = "im000" + std::to_string(v);
    Expected e{pattern_image(H, W, 3, v), pattern_mask(H, W, v), {}, "train"};
    write_pnm(dir("stare-images") / (stem + ".ppm"), e.image);
    write_pnm(dir("labels-ah") / (stem + ".ah.ppm"), v == 1 ? rgb_of(e.mask) : e.mask);
    if (v == 1) {  // one gzipped, one plain, as people unpack them either way
      gzip_file(root_ / "stare-images" / (stem + ".ppm"));
      gzip_file(root_ / "labels-ah" / (stem + ".ah.ppm"));
    }
    expected[stem + (v == 1 ? ".ppm.gz" : ".ppm")] = e;
  }
  write_pnm(root_ / "stare-images" / "im0003.ppm", pattern_image(H, W, 3, 3));  // unlabelled: not part of the set
  EXPECT_EQ(detect_layout(root_), Layout::stare);
  pack_and_compare(root_, expected, "STARE", options());
}

TEST_F(PackTest, ChaseJpgWithPngMasks) {
  std::map<std::string, Expected> expected;
  for (const char* stem : {"Image_01L", "Image_01R"}) {
    Expected e{smooth_image(H, W, 3, stem[8] == 'L' ? 1 : 2), pattern_mask(H, W, 3), {}, "train", 6};
    write_jpg(root_ / (std::string(stem) + ".jpg"), e.image);
    write_png(root_ / (std::string(stem) + "_1stHO.png"), e.mask);
    expected[std::string(stem) + ".jpg"] = e;
  }
  EXPECT_EQ(detect_layout(root_), Layout::chase_db1);
  pack_and_compare(root_, expected, "CHASE_DB1", options());
}

TEST_F(PackTest, HrfUpperCaseJpgWithTifMasks) {
  Expected e{smooth_image(H, W, 3, 4), pattern_mask(H, W, 4), disc_fov(H, W), "train", 6};
  write_jpg(dir("images") / "01_dr.JPG", e.image);
  write_tiff(dir("manual1") / "01_dr.tif", e.mask);
  write_tiff(dir("mask") / "01_dr_mask.tif", rgb_of(e.fov));  // HRF's FOV masks are RGB
  EXPECT_EQ(detect_layout(root_), Layout::hrf);
  pack_and_compare(root_, {{"01_dr.JPG", e}}, "HRF", options());
}

TEST_F(PackTest, FivesPngWithMisspeltGroundTruthFolder) {
  std::map<std::string, Expected> expected;
  Expected train{pattern_image(H, W, 3, 5), pattern_mask(H, W, 5), {}, "train"};
  write_png(dir("train/Original") / "1_A.png", train.image);
  write_png(dir("train/Groud truth") / "1_A.png", rgb_of(train.mask));
  Expected test{pattern_image(H, W, 3, 6), pattern_mask(H, W, 6), {}, "val"};
  write_png(dir("test/Original") / "2_N.png", test.image);
  write_png(dir("test/Ground truth") / "2_N.png", test.mask);
  EXPECT_EQ(detect_layout(root_), Layout::fives);
  pack_and_compare(root_, {{"1_A.png", train}, {"2_N.png", test}}, "FIVES", options());
}

TEST_F(PackTest, GenericFoldersWithPgmAndZeroOneMasks) {
  // DCA1-like grey PGM angiograms with "_gt" masks, and a PNG with a 0/1 mask and an FOV.
  Expected grey{pattern_image(H, W, 1, 7), pattern_mask(H, W, 7), disc_fov(H, W), "train"};
  write_pnm(dir("images") / "1.pgm", grey.image);
  write_pnm(dir("masks") / "1_gt.pgm", grey.mask);
  write_pnm(dir("fov") / "1.pgm", grey.fov);
  Expected colour{pattern_image(H, W, 3, 8), pattern_mask(H, W, 8), disc_fov(H, W), "train"};
  Image zero_one = colour.mask;
  for (uint8_t& v : zero_one.pixels) v = v ? 1 : 0;
  write_png(root_ / "images" / "2.png", colour.image);
  write_png(root_ / "masks" / "2.png", zero_one);
  write_png(root_ / "fov" / "2_mask.png", colour.fov);
  EXPECT_EQ(detect_layout(root_), Layout::generic);
  PackOptions o = options();
  o.dataset_name = "DCA1";
  pack_and_compare(root_, {{"1.pgm", grey}, {"2.png", colour}}, "DCA1", o);
}

TEST_F(PackTest, GenericCsvAndJsonManifestsCarrySplitAndTexts) {
  Expected a{pattern_image(H, W, 3, 9), pattern_mask(H, W, 9), {}, "val"};
  Expected b{pattern_image(H, W, 3, 10), pattern_mask(H, W, 10), disc_fov(H, W), "train"};
  write_png(dir("data") / "a.png", a.image);
  write_png(root_ / "data" / "a_label.png", a.mask);
  write_png(root_ / "data" / "b.png", b.image);
  write_png(root_ / "data" / "b_label.png", b.mask);
  write_png(root_ / "data" / "b_fov.png", b.fov);
  {
    std::ofstream csv(root_ / "manifest.csv");
    csv << "image,mask,fov,split,text\n"
        << "data/a.png,data/a_label.png,,val,coronary arteries|vessels\n"
        << "data/b.png,data/b_label.png,data/b_fov.png,train,\n";
  }
  EXPECT_EQ(detect_layout(root_), Layout::generic);
  PackOptions o = options();
  o.dataset_name = "angio";
  pack_and_compare(root_, {{"a.png", a}, {"b.png", b}}, "angio", o);
  PackedDataset dataset(root_ / "out");
  std::map<std::string, std::vector<std::string>> texts;
  for (int64_t i = 0; i < dataset.size(); ++i) {
    const SampleRecord r = dataset.read(i);
    texts[fs::path(r.source).filename().string()] = r.texts;
  }
  EXPECT_EQ(texts["a.png"], (std::vector<std::string>{"coronary arteries", "vessels"}));
  EXPECT_EQ(texts["b.png"], (std::vector<std::string>{"blood vessels"}));

  fs::remove(root_ / "manifest.csv");
  nlohmann::json json = {{"samples",
                          {{{"image", "data/a.png"}, {"mask", "data/a_label.png"}, {"split", "val"}},
                           {{"image", "data/b.png"}, {"mask", "data/b_label.png"}, {"fov", "data/b_fov.png"},
                            {"split", "train"}, {"texts", {"vessels"}}}}}};
  std::ofstream(root_ / "list.json") << json.dump();
  pack_and_compare(root_ / "list.json", {{"a.png", a}, {"b.png", b}}, "angio", o);
}

TEST_F(PackTest, ValFractionSplitIsSeededAndDeterministic) {
  const std::vector<std::string> a = draw_splits(100, 0.2, 7), b = draw_splits(100, 0.2, 7), c = draw_splits(100, 0.2, 8);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  EXPECT_EQ(std::count(a.begin(), a.end(), "val"), 20);
  EXPECT_EQ(std::count(a.begin(), a.end(), "train"), 80);
}

// ---- bad input -------------------------------------------------------------------------------------

// Packs and expects a failure whose message contains each of NEEDLES; nothing may be left behind.
void expect_pack_error(const fs::path& source, const fs::path& out, const PackOptions& o,
                       const std::vector<std::string>& needles) {
  try {
    pack_dataset(source, out, o);
    ADD_FAILURE() << "packing " << source << " should have failed";
  } catch (const Error& e) {
    for (const std::string& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(out.parent_path())) {
    EXPECT_EQ(entry.path().filename().string().find(out.filename().string() + ".partial"), std::string::npos)
        << "left behind: " << entry.path();
  }
}

class BadInputTest : public PackTest {
 protected:
  void SetUp() override {
    PackTest::SetUp();
    for (int v = 0; v < 4; ++v) {  // good samples around the bad one
      write_png(dir("src/images") / (std::to_string(v) + ".png"), pattern_image(H, W, 3, v));
      write_png(dir("src/masks") / (std::to_string(v) + ".png"), pattern_mask(H, W, v));
    }
  }
  fs::path source() { return root_ / "src"; }
  fs::path out() { return root_ / "out"; }
};

TEST_F(BadInputTest, CorruptImageNamesTheFile) {
  std::ofstream(source() / "images" / "9.png") << "\x89PNG\r\n\x1a\n garbage";
  write_png(source() / "masks" / "9.png", pattern_mask(H, W, 1));
  expect_pack_error(source(), out(), options(), {"9.png", "cannot decode image"});
}

TEST_F(BadInputTest, MaskOfAnotherSizeNamesBothFiles) {
  write_png(source() / "images" / "9.png", pattern_image(H, W, 3, 1));
  write_png(source() / "masks" / "9.png", pattern_mask(H + 1, W, 1));
  expect_pack_error(source(), out(), options(), {"masks/9.png", "is 21x27 but image", "images/9.png"});
}

TEST_F(BadInputTest, NonBinaryMaskNamesTheFile) {
  write_png(source() / "images" / "9.png", pattern_image(H, W, 3, 1));
  Image grey = pattern_mask(H, W, 1);
  grey.at(3, 3) = 128;
  write_png(source() / "masks" / "9.png", grey);
  expect_pack_error(source(), out(), options(), {"masks/9.png", "not binary", "--mask-threshold"});
  PackOptions o = options();
  o.mask_threshold = 100;  // the documented escape for lossy masks
  EXPECT_NO_THROW(pack_dataset(source(), out(), o));
}

TEST_F(BadInputTest, MissingMaskNamesTheImage) {
  write_png(source() / "images" / "9.png", pattern_image(H, W, 3, 1));
  expect_pack_error(source(), out(), options(), {"missing mask", "images/9.png"});
}

TEST_F(BadInputTest, MissingFovNamesTheImage) {
  write_tiff(dir("drive/training/images") / "21_training.tif", pattern_image(H, W, 3, 1));
  write_gif(dir("drive/training/1st_manual") / "21_manual1.gif", pattern_mask(H, W, 1));
  dir("drive/training/mask");
  expect_pack_error(root_ / "drive", out(), options(), {"missing FOV mask", "21_training.tif", "21_training_mask.gif"});
}

TEST_F(BadInputTest, SkipBadReportsAndPacksTheRest) {
  write_png(source() / "images" / "8.png", pattern_image(H, W, 3, 1));  // no mask
  std::ofstream(source() / "images" / "9.png") << "not an image";
  write_png(source() / "masks" / "9.png", pattern_mask(H, W, 1));
  PackOptions o = options();
  o.skip_bad = true;
  const PackReport report = pack_dataset(source(), out(), o);
  ASSERT_EQ(report.skipped.size(), 2u);
  EXPECT_NE(report.skipped[0].find("8.png"), std::string::npos) << report.skipped[0];
  EXPECT_NE(report.skipped[1].find("9.png"), std::string::npos) << report.skipped[1];
  EXPECT_EQ(PackedDataset(out()).size(), 4);
}

TEST_F(BadInputTest, ExistingOutputIsKeptUnlessOverwriteAndReplacedOnlyWhenComplete) {
  ASSERT_NO_THROW(pack_dataset(source(), out(), options()));
  EXPECT_THROW(pack_dataset(source(), out(), options()), Error);
  // A failing --overwrite run leaves the old, complete set in place.
  write_png(source() / "images" / "9.png", pattern_image(H, W, 3, 1));
  PackOptions o = options();
  o.shards.overwrite = true;
  EXPECT_THROW(pack_dataset(source(), out(), o), Error);
  EXPECT_EQ(PackedDataset(out()).size(), 4);
}

TEST_F(PackTest, KilledPackLeavesNoCompleteLookingOutput) {
  const fs::path out = root_ / "synth";
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    PackOptions o;
    o.threads = 1;
    o.shards.samples_per_shard = 4;
    SynthOptions synth;
    synth.count = 100000;  // far more than can finish before the kill
    synth.size = 64;
    try {
      pack_synthetic(synth, out, o);
    } catch (...) {
    }
    _exit(0);
  }
  // Kill it once a shard has been written.
  bool shard_written = false;
  for (int i = 0; i < 2000 && !shard_written; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    for (const auto& entry : fs::directory_iterator(root_)) {
      if (entry.path().filename().string().find("synth.partial") == 0 && fs::exists(entry.path() / "train-00001.h5")) {
        shard_written = true;
      }
    }
  }
  kill(child, SIGKILL);
  int status = 0;
  waitpid(child, &status, 0);
  ASSERT_TRUE(shard_written) << "the child never wrote a shard";
  EXPECT_FALSE(fs::exists(out));
  for (const auto& entry : fs::directory_iterator(root_)) {
    EXPECT_FALSE(fs::exists(entry.path() / "manifest.json")) << entry.path();
    EXPECT_THROW(PackedDataset{entry.path()}, Error);
  }
  // The next pack removes the killed one's folder (its process is gone) and leaves a running pack's alone.
  char host[256] = {0};
  gethostname(host, sizeof(host) - 1);
  const std::string running = "synth.partial-" + std::string(host) + "-1";  // pid 1 always runs
  const std::string elsewhere = "synth.partial-another-host-999999";       // its process cannot be seen from here
  fs::create_directories(root_ / running);
  fs::create_directories(root_ / elsewhere);
  PackOptions o;
  o.threads = 1;
  SynthOptions small;
  small.count = 4;
  small.size = 64;
  pack_synthetic(small, out, o);
  for (const auto& entry : fs::directory_iterator(root_)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind("synth", 0) == 0) {
      EXPECT_TRUE(name == "synth" || name == running || name == elsewhere) << "left: " << name;
    }
  }
  EXPECT_TRUE(fs::is_directory(root_ / running));
  EXPECT_TRUE(fs::is_directory(root_ / elsewhere));
}

// ---- the reader refuses shards that disagree with their manifest -------------------------------------

class ReaderValidationTest : public PackTest {
 protected:
  void SetUp() override {
    PackTest::SetUp();
    PackOptions o;
    o.threads = 1;
    o.val_fraction = 0.0;
    o.shards.samples_per_shard = 2;
    SynthOptions synth;
    synth.count = 4;
    synth.size = 64;
    pack_synthetic(synth, out(), o);
  }
  fs::path out() { return root_ / "set"; }
  fs::path shard() { return out() / "train-00001.h5"; }

  nlohmann::json manifest() { return nlohmann::json::parse(std::ifstream(out() / "manifest.json")); }
  void save(const nlohmann::json& json) { std::ofstream(out() / "manifest.json") << json.dump(1); }

  // Makes the manifest's size and checksum match the shard file again (as a forger would).
  void refresh_checksum() {
    nlohmann::json json = manifest();
    for (auto& entry : json["shards"]) {
      if (entry["file"] == shard().filename().string()) {
        entry["bytes"] = fs::file_size(shard());
        entry["crc32"] = crc32_hex(file_crc32(shard()));
      }
    }
    save(json);
  }

  void expect_read_error(const std::vector<std::string>& needles) {
    PackedDataset dataset(out());
    EXPECT_NO_THROW(dataset.read(0));  // other shards are fine
    try {
      dataset.read(2);  // first sample of the second shard
      ADD_FAILURE() << "reading a bad shard should fail";
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(shard().string()), std::string::npos) << e.what();
      for (const std::string& needle : needles) EXPECT_NE(std::string(e.what()).find(needle), std::string::npos) << e.what();
    }
  }
};

TEST_F(ReaderValidationTest, ReadsWhatWasPacked) {
  PackedDataset dataset(out());
  ASSERT_EQ(dataset.size(), 4);
  SynthOptions synth;
  synth.count = 4;
  synth.size = 64;
  for (int64_t i = 0; i < 4; ++i) {
    const SampleRecord want = synthesize_sample(i, synth), got = dataset.read(i);
    EXPECT_EQ(got.image.pixels, want.image.pixels);
    EXPECT_EQ(got.mask.pixels, want.mask.pixels);
    EXPECT_EQ(got.fov.pixels, want.fov.pixels);
    EXPECT_EQ(got.source, want.source);
  }
}

TEST_F(PackTest, StoredWithoutCompressionReadsTheSamePixels) {
  PackOptions o;
  o.threads = 1;
  o.val_fraction = 0.0;
  o.shards.compression_level = 0;  // --compression 0 (images are stored by default)
  SynthOptions synth;
  synth.count = 3;
  synth.size = 64;
  pack_synthetic(synth, root_ / "stored", o);
  const PackedDataset dataset(root_ / "stored");
  ASSERT_EQ(dataset.size(), 3);
  for (int64_t i = 0; i < 3; ++i) {
    const SampleRecord want = synthesize_sample(i, synth), got = dataset.read(i);
    EXPECT_EQ(got.image.pixels, want.image.pixels);
    EXPECT_EQ(got.mask.pixels, want.mask.pixels);
    EXPECT_EQ(got.fov.pixels, want.fov.pixels);
  }
  // Each sample holds its raw pixels: the shard is at least 64 × 64 × (3 + 1 + 1) bytes per sample.
  EXPECT_GE(fs::file_size(root_ / "stored" / "train-00000.h5"), 3u * 64 * 64 * 5);
}

TEST_F(ReaderValidationTest, ChecksumMismatchIsRefused) {
  std::fstream file(shard(), std::ios::in | std::ios::out | std::ios::binary);
  file.seekp(static_cast<std::streamoff>(fs::file_size(shard()) / 2));
  file.put('\x5a');
  file.close();
  expect_read_error({"checksum"});
}

// A stored image chunk changed after the manifest was (re)written, as damage after a run has checked the shard:
// the chunk's content hash refuses it when the sample is read.
TEST_F(ReaderValidationTest, AChangedChunkFailsItsContentHashWhenRead) {
  const std::string key = manifest()["shards"][1]["samples"][0]["key"];
  const auto [address, bytes] = testing_support::first_chunk(shard().string(), "samples/" + key + "/image");
  ASSERT_GT(bytes, 100u);
  std::fstream file(shard(), std::ios::in | std::ios::out | std::ios::binary);
  file.seekg(static_cast<std::streamoff>(address + bytes / 2));
  const char byte = static_cast<char>(file.get());
  file.seekp(static_cast<std::streamoff>(address + bytes / 2));
  file.put(static_cast<char>(byte ^ 0x10));  // a stored image: any byte is a valid pixel
  file.close();
  refresh_checksum();
  expect_read_error({"sample " + key, "dataset 'image' does not match the content hash"});
}

TEST_F(ReaderValidationTest, UnknownFormatVersionIsRefused) {
  hid_t file = H5Fopen(shard().c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  ASSERT_GE(file, 0);
  H5Adelete(file, "format_version");
  const int64_t version = 99;
  hid_t space = H5Screate(H5S_SCALAR);
  hid_t attribute = H5Acreate2(file, "format_version", H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT);
  H5Awrite(attribute, H5T_NATIVE_INT64, &version);
  H5Aclose(attribute);
  H5Sclose(space);
  H5Fclose(file);
  refresh_checksum();
  expect_read_error({"format version 99"});
}

TEST_F(ReaderValidationTest, ShapeThatDisagreesWithTheManifestIsRefused) {
  nlohmann::json json = manifest();
  for (auto& entry : json["shards"]) {
    if (entry["file"] == shard().filename().string()) entry["samples"][1]["height"] = 63;
  }
  save(json);
  expect_read_error({"sample 00001", "has shape 64x64x3 but the manifest says 63x64x3"});
}

TEST_F(ReaderValidationTest, MissingShardIsRefused) {
  fs::remove(shard());
  expect_read_error({"missing"});
}

TEST_F(ReaderValidationTest, ManifestOfAnotherVersionIsRefused) {
  nlohmann::json json = manifest();
  json["format_version"] = 2;
  save(json);
  try {
    PackedDataset dataset(out());
    ADD_FAILURE() << "a manifest of version 2 should be refused";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("format version 2"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vesseltune::data
