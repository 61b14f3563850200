#include "vesseltune/data/layout.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <sstream>

#include "vesseltune/core/check.h"

namespace vesseltune::data {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string text) {
  std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
  return text;
}

bool ends_with(const std::string& text, const std::string& suffix) {
  return text.size() >= suffix.size() && text.compare(text.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// File name without ".gz" and without its image extension: "im0001.ppm.gz" → "im0001".
std::string base_stem(const fs::path& path) {
  fs::path name = path.filename();
  if (lower(name.extension().string()) == ".gz") name = name.stem();
  return name.stem().string();
}

bool is_image_file(const fs::path& path) {
  static const char* extensions[] = {".tif", ".tiff", ".gif", ".ppm", ".pgm", ".jpg", ".jpeg", ".png", ".bmp"};
  fs::path name = path.filename();
  if (lower(name.extension().string()) == ".gz") name = name.stem();
  const std::string extension = lower(name.extension().string());
  return fs::is_regular_file(path) &&
         std::any_of(std::begin(extensions), std::end(extensions), [&](const char* e) { return extension == e; });
}

// Image files directly in DIR (or below it when RECURSIVE), sorted.
std::vector<fs::path> image_files(const fs::path& dir, bool recursive = false) {
  std::vector<fs::path> files;
  if (!fs::is_directory(dir)) return files;
  if (recursive) {
    for (const auto& entry : fs::recursive_directory_iterator(dir)) {
      if (is_image_file(entry.path())) files.push_back(entry.path());
    }
  } else {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (is_image_file(entry.path())) files.push_back(entry.path());
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Image files of DIR by base stem.
std::map<std::string, fs::path> files_by_stem(const fs::path& dir) {
  std::map<std::string, fs::path> files;
  for (const fs::path& file : image_files(dir)) files.emplace(base_stem(file), file);
  return files;
}

void require_file(SourceItem& item, const fs::path& path, const char* what, const fs::path& image) {
  if (item.problem.empty() && !fs::is_regular_file(path)) {
    item.problem = std::string("missing ") + what + " for " + image.string() + ": expected " + path.string();
  }
}

std::vector<SourceItem> list_drive(const fs::path& source) {
  std::vector<SourceItem> items;
  for (const auto& [folder, split] : {std::pair{"training", "train"}, std::pair{"test", "val"}}) {
    const fs::path base = source / folder;
    for (const fs::path& image : image_files(base / "images")) {
      const std::string stem = base_stem(image);  // "21_training"
      const std::string number = stem.substr(0, stem.find('_'));
      SourceItem item;
      item.image = image;
      item.mask = base / "1st_manual" / (number + "_manual1.gif");
      item.fov = base / "mask" / (stem + "_mask.gif");
      item.split = split;
      require_file(item, item.mask, "mask", image);
      require_file(item, item.fov, "FOV mask", image);
      items.push_back(item);
    }
  }
  return items;
}

std::vector<SourceItem> list_stare(const fs::path& source) {
  // The labelled images are the segmentation set (the archive holds 400 images, 20 of them labelled).
  std::map<std::string, fs::path> images;
  for (const auto& entry : fs::recursive_directory_iterator(source)) {
    const std::string parent = lower(entry.path().parent_path().filename().string());
    if (parent.rfind("labels-", 0) == 0 || !is_image_file(entry.path())) continue;
    if (lower(entry.path().filename().string()).find(".ppm") != std::string::npos) {
      images.emplace(base_stem(entry.path()), entry.path());
    }
  }
  std::vector<SourceItem> items;
  for (const fs::path& label : image_files(source / "labels-ah")) {
    const std::string stem = base_stem(label);  // "im0001.ah"
    VT_CHECK(ends_with(stem, ".ah"), "STARE label ", label.string(), " is not named <image>.ah.ppm");
    const std::string image_stem = stem.substr(0, stem.size() - 3);
    SourceItem item;
    item.mask = label;
    const auto found = images.find(image_stem);
    item.image = found != images.end() ? found->second : source / (image_stem + ".ppm");
    require_file(item, item.image, "image", label);
    items.push_back(item);
  }
  std::sort(items.begin(), items.end(), [](const SourceItem& a, const SourceItem& b) { return a.image < b.image; });
  return items;
}

std::vector<SourceItem> list_chase(const fs::path& source) {
  std::vector<SourceItem> items;
  for (const fs::path& image : image_files(source, true)) {
    const std::string stem = base_stem(image);
    const std::string extension = lower(image.extension().string());
    if (stem.rfind("Image_", 0) != 0 || (extension != ".jpg" && extension != ".jpeg")) continue;
    SourceItem item;
    item.image = image;
    item.mask = image.parent_path() / (stem + "_1stHO.png");
    require_file(item, item.mask, "mask", image);
    items.push_back(item);
  }
  return items;
}

std::vector<SourceItem> list_hrf(const fs::path& source) {
  std::vector<SourceItem> items;
  for (const fs::path& image : image_files(source / "images")) {
    const std::string stem = base_stem(image);
    SourceItem item;
    item.image = image;
    item.mask = source / "manual1" / (stem + ".tif");
    item.fov = source / "mask" / (stem + "_mask.tif");
    require_file(item, item.mask, "mask", image);
    require_file(item, item.fov, "FOV mask", image);
    items.push_back(item);
  }
  return items;
}

fs::path fives_truth_dir(const fs::path& base) {
  return fs::is_directory(base / "Ground truth") ? base / "Ground truth" : base / "Groud truth";
}

std::vector<SourceItem> list_fives(const fs::path& source) {
  std::vector<SourceItem> items;
  for (const auto& [folder, split] : {std::pair{"train", "train"}, std::pair{"test", "val"}}) {
    const fs::path base = source / folder;
    for (const fs::path& image : image_files(base / "Original")) {
      SourceItem item;
      item.image = image;
      item.mask = fives_truth_dir(base) / image.filename();
      item.split = split;
      require_file(item, item.mask, "mask", image);
      items.push_back(item);
    }
  }
  return items;
}

std::vector<std::string> split_texts(const std::string& text) {
  std::vector<std::string> texts;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, '|')) {
    if (!part.empty()) texts.push_back(part);
  }
  return texts;
}

SourceItem manifest_item(const fs::path& base, const std::string& image, const std::string& mask,
                         const std::string& fov, const std::string& split, std::vector<std::string> texts,
                         const std::string& where) {
  VT_CHECK(!image.empty() && !mask.empty(), where, ": 'image' and 'mask' are required");
  VT_CHECK(split.empty() || split == "train" || split == "val", where, ": split '", split, "' is not train or val");
  SourceItem item;
  item.image = base / image;
  item.mask = base / mask;
  if (!fov.empty()) item.fov = base / fov;
  item.split = split;
  item.texts = std::move(texts);
  require_file(item, item.image, "image", item.image);
  require_file(item, item.mask, "mask", item.image);
  if (!item.fov.empty()) require_file(item, item.fov, "FOV mask", item.image);
  return item;
}

// CSV: a header naming the columns (image, mask required; fov, split, text optional), one sample per line,
// fields without commas or quotes; several texts separated by '|'.
std::vector<SourceItem> list_csv(const fs::path& file) {
  std::ifstream in(file);
  VT_CHECK(in, "cannot open ", file.string());
  auto fields_of = [](const std::string& line) {
    std::vector<std::string> fields;
    std::stringstream row(line);
    std::string field;
    while (std::getline(row, field, ',')) {
      while (!field.empty() && std::isspace(static_cast<unsigned char>(field.back()))) field.pop_back();
      while (!field.empty() && std::isspace(static_cast<unsigned char>(field.front()))) field.erase(0, 1);
      fields.push_back(field);
    }
    return fields;
  };
  std::string line;
  VT_CHECK(std::getline(in, line), file.string(), ": empty CSV manifest");
  const std::vector<std::string> header = fields_of(line);
  auto column = [&](const char* name) {
    const auto found = std::find(header.begin(), header.end(), name);
    return found == header.end() ? -1 : static_cast<int>(found - header.begin());
  };
  const int image = column("image"), mask = column("mask"), fov = column("fov"), split = column("split"),
            text = column("text");
  VT_CHECK(image >= 0 && mask >= 0, file.string(), ": the header must name the columns 'image' and 'mask'");
  std::vector<SourceItem> items;
  for (int number = 2; std::getline(in, line); ++number) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::vector<std::string> fields = fields_of(line);
    const std::string where = file.string() + " line " + std::to_string(number);
    VT_CHECK(fields.size() <= header.size(), where, ": ", fields.size(), " fields but the header has ", header.size());
    auto get = [&](int i) { return i >= 0 && i < static_cast<int>(fields.size()) ? fields[i] : std::string(); };
    items.push_back(manifest_item(file.parent_path(), get(image), get(mask), get(fov), get(split),
                                  split_texts(get(text)), where));
  }
  return items;
}

// JSON: a list (or {"samples": list}) of objects with image, mask and optionally fov, split, texts.
std::vector<SourceItem> list_json(const fs::path& file) {
  std::ifstream in(file);
  VT_CHECK(in, "cannot open ", file.string());
  nlohmann::json root;
  try {
    root = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    VT_FAIL(file.string(), ": not valid JSON (", e.what(), ")");
  }
  const nlohmann::json& samples = root.is_object() && root.contains("samples") ? root.at("samples") : root;
  VT_CHECK(samples.is_array(), file.string(), ": expected a list of samples (or {\"samples\": [...]})");
  std::vector<SourceItem> items;
  for (size_t i = 0; i < samples.size(); ++i) {
    const std::string where = file.string() + " sample " + std::to_string(i);
    const nlohmann::json& s = samples[i];
    VT_CHECK(s.is_object(), where, ": not an object");
    auto text = [&](const char* key) {
      if (!s.contains(key)) return std::string();
      VT_CHECK(s.at(key).is_string(), where, ": '", key, "' must be a string");
      return s.at(key).get<std::string>();
    };
    std::vector<std::string> texts;
    if (s.contains("texts")) {
      VT_CHECK(s.at("texts").is_array(), where, ": 'texts' must be a list of strings");
      for (const auto& t : s.at("texts")) {
        VT_CHECK(t.is_string(), where, ": 'texts' must be a list of strings");
        texts.push_back(t.get<std::string>());
      }
    }
    items.push_back(manifest_item(file.parent_path(), text("image"), text("mask"), text("fov"), text("split"),
                                  texts, where));
  }
  return items;
}

fs::path generic_manifest(const fs::path& source) {
  const std::string extension = lower(source.extension().string());
  if (fs::is_regular_file(source) && (extension == ".csv" || extension == ".json")) return source;
  for (const char* name : {"manifest.csv", "manifest.json"}) {
    if (fs::is_regular_file(source / name)) return source / name;
  }
  return {};
}

std::vector<SourceItem> list_generic(const fs::path& source) {
  const fs::path manifest = generic_manifest(source);
  if (!manifest.empty()) return lower(manifest.extension().string()) == ".csv" ? list_csv(manifest) : list_json(manifest);
  std::vector<SourceItem> items;
  const fs::path masks = source / "masks", fovs = source / "fov";
  const std::map<std::string, fs::path> mask_files = files_by_stem(masks), fov_files = files_by_stem(fovs);
  auto match = [](const std::map<std::string, fs::path>& files, const std::string& stem) {
    for (const char* suffix : {"", "_mask", "_gt"}) {
      const auto found = files.find(stem + suffix);
      if (found != files.end()) return found->second;
    }
    return fs::path();
  };
  for (const fs::path& image : image_files(source / "images")) {
    const std::string stem = base_stem(image);
    SourceItem item;
    item.image = image;
    item.mask = match(mask_files, stem);
    if (item.mask.empty()) item.problem = "missing mask for " + image.string() + ": no file named " + stem + ".* in " + masks.string();
    if (fs::is_directory(fovs)) {
      item.fov = match(fov_files, stem);
      if (item.fov.empty() && item.problem.empty()) {
        item.problem = "missing FOV mask for " + image.string() + ": no file named " + stem + ".* in " + fovs.string();
      }
    }
    items.push_back(item);
  }
  return items;
}

bool matches(const fs::path& source, Layout layout) {
  switch (layout) {
    case Layout::drive:
      return fs::is_directory(source / "training" / "images") || fs::is_directory(source / "test" / "1st_manual");
    case Layout::stare: return fs::is_directory(source / "labels-ah");
    case Layout::chase_db1:
      if (!fs::is_directory(source)) return false;
      for (const fs::path& file : image_files(source, true)) {
        if (ends_with(base_stem(file), "_1stHO")) return true;
      }
      return false;
    case Layout::hrf: return fs::is_directory(source / "images") && fs::is_directory(source / "manual1");
    case Layout::fives:
      return fs::is_directory(source / "train" / "Original") || fs::is_directory(source / "test" / "Original");
    case Layout::generic:
      return !generic_manifest(source).empty() ||
             (fs::is_directory(source / "images") && fs::is_directory(source / "masks"));
  }
  return false;
}

constexpr Layout kLayouts[] = {Layout::drive, Layout::stare, Layout::chase_db1, Layout::hrf, Layout::fives, Layout::generic};

}  // namespace

std::string layout_name(Layout layout) {
  switch (layout) {
    case Layout::drive: return "DRIVE";
    case Layout::stare: return "STARE";
    case Layout::chase_db1: return "CHASE_DB1";
    case Layout::hrf: return "HRF";
    case Layout::fives: return "FIVES";
    case Layout::generic: return "generic";
  }
  return "?";
}

Layout parse_layout(const std::string& name) {
  std::string known;
  for (Layout layout : kLayouts) {
    if (lower(layout_name(layout)) == lower(name)) return layout;
    known += (known.empty() ? "" : ", ") + layout_name(layout);
  }
  VT_FAIL("unknown layout '", name, "'; known layouts: ", known);
}

Layout detect_layout(const fs::path& source) {
  VT_CHECK(fs::exists(source), "source ", source.string(), " does not exist");
  std::vector<Layout> found;
  for (Layout layout : kLayouts) {
    if (matches(source, layout)) found.push_back(layout);
  }
  // A manifest or images/+masks/ also fits folders of a named layout; the named layout wins.
  if (found.size() > 1 && found.back() == Layout::generic) found.pop_back();
  VT_CHECK(!found.empty(), "cannot tell the layout of ", source.string(),
           ": expected DRIVE (training|test/images), STARE (labels-ah/), CHASE_DB1 (Image_*_1stHO.png), HRF "
           "(images/ + manual1/), FIVES (train|test/Original/) or generic (images/ + masks/, or manifest.csv|json)");
  VT_CHECK(found.size() == 1, source.string(), " looks like both ", layout_name(found[0]), " and ",
           layout_name(found[1]), "; name one with --layout");
  return found[0];
}

std::vector<SourceItem> list_items(const fs::path& source, Layout layout) {
  VT_CHECK(fs::exists(source), "source ", source.string(), " does not exist");
  std::vector<SourceItem> items;
  switch (layout) {
    case Layout::drive: items = list_drive(source); break;
    case Layout::stare: items = list_stare(source); break;
    case Layout::chase_db1: items = list_chase(source); break;
    case Layout::hrf: items = list_hrf(source); break;
    case Layout::fives: items = list_fives(source); break;
    case Layout::generic: items = list_generic(source); break;
  }
  VT_CHECK(!items.empty(), "no images found in ", source.string(), " for layout ", layout_name(layout));
  return items;
}

std::vector<fs::path> list_image_files(const fs::path& dir) { return image_files(dir); }

std::string image_stem(const fs::path& path) { return base_stem(path); }

}  // namespace vesseltune::data
