#include "vesseltune/eval/image_source.h"

#include <cctype>
#include <optional>

#include "vesseltune/core/check.h"
#include "vesseltune/data/packer.h"
#include "vesseltune/data/shard_format.h"

namespace vesseltune::eval {
namespace fs = std::filesystem;

std::string file_name_for(const std::string& source) {
  const fs::path path(source);
  std::string name = (path.parent_path() / data::image_stem(path)).string();
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') c = '_';
  }
  return name;
}

ImageSource::ImageSource(const fs::path& path, const std::string& split, const std::string& layout, int mask_threshold)
    : base_(path), mask_threshold_(mask_threshold) {
  VT_CHECK(fs::is_directory(path), "no image folder or packed data set at '", path.string(), "'");
  if (fs::exists(path / "manifest.json")) {
    packed_ = std::make_shared<const data::PackedDataset>(path, split);
    VT_CHECK(packed_->size() > 0, path.string(), ": no samples in split '", split, "'");
    description_ = path.string() + (split.empty() ? "" : " (" + split + ")") + ", packed";
    return;
  }
  // An image folder: a named layout, else the one detected, else (no layout matches) plain images.
  std::optional<data::Layout> chosen;
  if (!layout.empty()) {
    chosen = data::parse_layout(layout);
  } else {
    try {
      chosen = data::detect_layout(path);
    } catch (const Error&) {
      if (data::list_image_files(path).empty()) throw;  // neither a layout nor images: say why
    }
  }
  if (chosen) {
    items_ = data::list_items(path, *chosen);
    dataset_ = data::layout_name(*chosen);
    description_ = path.string() + ", layout " + dataset_;
  } else {
    for (const fs::path& file : data::list_image_files(path)) items_.push_back({file, {}, {}, "", {}, ""});
    labelled_ = false;
    dataset_ = path.filename().string();
    description_ = path.string() + ", images without ground truth";
  }
  VT_CHECK(!items_.empty(), "no images in '", path.string(), "'");
}

int64_t ImageSource::size() const { return packed_ ? packed_->size() : static_cast<int64_t>(items_.size()); }

EvalImage ImageSource::read(int64_t index) const {
  VT_CHECK(index >= 0 && index < size(), "image ", index, " of ", size(), " requested");
  EvalImage image;
  image.record = packed_ ? packed_->read(index)
                         : data::load_source_item(items_[static_cast<size_t>(index)], base_, dataset_,
                                                  {data::kDefaultText}, mask_threshold_);
  image.name = file_name_for(image.record.source);
  return image;
}

}  // namespace vesseltune::eval
