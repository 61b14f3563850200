#pragma once
// The folder layouts vesseltune-pack reads, as the public archives unpack, and how their files pair up:
//   DRIVE      training|test/images/NN_*.tif, 1st_manual/NN_manual1.gif, mask/<image stem>_mask.gif (FOV);
//              official split: training → train, test → val
//   STARE      <stem>.ppm[.gz] anywhere, labels-ah/<stem>.ah.ppm[.gz]; the labelled images are the set
//   CHASE_DB1  Image_NNx.jpg with Image_NNx_1stHO.png beside it
//   HRF        images/<stem>.jpg|JPG, manual1/<stem>.tif, mask/<stem>_mask.tif (FOV)
//   FIVES      train|test/Original/<name>.png, train|test/Ground truth/<name>.png ("Groud truth" too);
//              official split: train → train, test → val
//   generic    images/ + masks/ (+ fov/) matched by file stem (a mask may add _mask or _gt), or a
//              manifest.csv / manifest.json (columns image, mask, fov, split, text) — angiography sets
//              such as XCAD, ARCADE exports and DCA1's .pgm files.

#include <filesystem>
#include <string>
#include <vector>

namespace vesseltune::data {

enum class Layout { drive, stare, chase_db1, hrf, fives, generic };

struct SourceItem {
  std::filesystem::path image;
  std::filesystem::path mask;
  std::filesystem::path fov;       // empty: the data set has no FOV masks (all ones)
  std::string split;               // official split ("train"/"val"), or empty: drawn by --val-fraction
  std::vector<std::string> texts;  // from a generic manifest; empty: the pack's default
  std::string problem;             // why this item cannot be packed (a missing file), empty if none
};

std::string layout_name(Layout layout);           // "DRIVE", "STARE", ...
Layout parse_layout(const std::string& name);     // case-insensitive; errors list the known names

// The one layout SOURCE matches; errors when none or several do (then --layout decides).
Layout detect_layout(const std::filesystem::path& source);

// Every image of SOURCE with its mask and FOV, sorted by image path. SOURCE may be a manifest file for
// the generic layout.
std::vector<SourceItem> list_items(const std::filesystem::path& source, Layout layout);

// The image files directly in DIR (the extensions the codecs read, optionally gzipped), sorted.
std::vector<std::filesystem::path> list_image_files(const std::filesystem::path& dir);
// A file name without ".gz" and its image extension: "im0001.ppm.gz" → "im0001".
std::string image_stem(const std::filesystem::path& path);

}  // namespace vesseltune::data
