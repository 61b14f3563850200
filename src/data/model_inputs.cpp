#include "vesseltune/data/model_inputs.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "vesseltune/core/check.h"
#include "vesseltune/data/random.h"

namespace vesseltune::data {

TileGrid choose_tile_grid(int width, int height, const ModelInputOptions& options) {
  VT_CHECK(width > 0 && height > 0, "tile grid for an empty image");
  VT_CHECK(options.min_tiles >= 1 && options.max_tiles >= options.min_tiles, "tiles must satisfy 1 <= min (",
           options.min_tiles, ") <= max (", options.max_tiles, ")");
  // InternVL's candidates ordered by tile count (ties by columns, which decides nothing: equal counts with
  // equal aspect ratios are the same grid).
  std::vector<TileGrid> grids;
  for (int tiles = 1; tiles <= options.max_tiles; ++tiles) {
    for (int columns = 1; columns <= tiles; ++columns) {
      if (tiles % columns == 0 && tiles >= options.min_tiles) grids.push_back({columns, tiles / columns});
    }
  }
  const double aspect = static_cast<double>(width) / height;
  const double area = static_cast<double>(width) * height;
  const double tile_area = static_cast<double>(options.tile_size) * options.tile_size;
  double best_difference = std::numeric_limits<double>::infinity();
  TileGrid best{1, 1};
  for (const TileGrid& grid : grids) {
    const double difference = std::abs(aspect - static_cast<double>(grid.columns) / grid.rows);
    if (difference < best_difference) {
      best_difference = difference;
      best = grid;
    } else if (difference == best_difference && area > 0.5 * tile_area * grid.tiles()) {
      best = grid;
    }
  }
  return best;
}

namespace {

// The HEIGHT×WIDTH window of an RGB image at (TOP, LEFT), channels first, into OUT ([3, height, width]
// uint8, contiguous): the layout of the float tensors the image branches take.
void write_channels_first(const Image& image, int top, int left, int height, int width, at::Tensor out) {
  VT_CHECK(image.channels == 3, "model images must be RGB, got ", image.channels, " channels");
  VT_CHECK(top >= 0 && left >= 0 && top + height <= image.height && left + width <= image.width,
           "window ", height, "x", width, " at (", top, ",", left, ") does not fit a ", image.height, "x",
           image.width, " image");
  VT_CHECK(out.is_contiguous() && out.scalar_type() == at::kByte && out.numel() == int64_t{3} * height * width,
           "write_channels_first needs a contiguous uint8 [3, ", height, ", ", width, "] tensor");
  const size_t plane = static_cast<size_t>(height) * width;
  uint8_t* red = out.data_ptr<uint8_t>();
  uint8_t* green = red + plane;
  uint8_t* blue = green + plane;
  for (int y = 0; y < height; ++y) {
    const uint8_t* in = image.ptr(top + y, left);
    const size_t row = static_cast<size_t>(y) * width;
    for (int x = 0; x < width; ++x) {
      red[row + x] = in[3 * x];
      green[row + x] = in[3 * x + 1];
      blue[row + x] = in[3 * x + 2];
    }
  }
}

// [N, 3, H, W] uint8 → on DEVICE, (v / 255 - mean) / std in DTYPE.
at::Tensor normalize_on_device(const at::Tensor& pixels, at::Device device, const ModelInputOptions& options,
                               at::ScalarType dtype, const char* what) {
  VT_CHECK(pixels.defined(), "normalize_for_model: batch ", what, " is empty");
  VT_CHECK(pixels.scalar_type() == at::kByte && pixels.dim() == 4 && pixels.size(1) == 3, "normalize_for_model: batch ",
           what, " must be uint8 [N, 3, H, W], got ", pixels.scalar_type(), " ", pixels.sizes());
  auto per_channel = [&](const std::array<float, 3>& values) {
    return at::from_blob(const_cast<float*>(values.data()), {1, 3, 1, 1}, at::kFloat).to(device);  // copies
  };
  at::Tensor values = pixels.to(device).to(at::kFloat).div_(255.0);
  return values.sub_(per_channel(options.mean)).div_(per_channel(options.std)).to(dtype);
}

}  // namespace

at::Tensor plane_tensor(const Image& plane) {
  VT_CHECK(plane.channels == 1, "plane_tensor needs one channel, got ", plane.channels);
  at::Tensor tensor = at::empty({plane.height, plane.width}, at::kByte);
  std::memcpy(tensor.data_ptr<uint8_t>(), plane.pixels.data(), plane.pixels.size());
  return tensor;
}

Sample make_model_inputs(const SampleRecord& record, const ModelInputOptions& options, uint64_t seed,
                         const Augmentation& augmentation) {
  const Image& image = record.image;
  VT_CHECK(record.mask.height == image.height && record.fov.height == image.height &&
               record.mask.width == image.width && record.fov.width == image.width,
           record.source, ": image, mask and FOV sizes differ");
  auto render_plane = [&](const Image& plane, int height, int width) {
    return plane_tensor(render_augmented(plane, augmentation, height, width, PlaneKind::mask));
  };
  const auto [height, width] = augmentation.size(image.height, image.width);
  Sample sample;
  sample.grid = choose_tile_grid(width, height, options);
  const int t = options.tile_size, s = options.sam_size;
  const bool thumbnail = options.use_thumbnail && sample.grid.tiles() != 1;
  // The grid image, SAM2's image and the thumbnail, from one read of the source.
  std::vector<std::pair<int, int>> sizes = {{sample.grid.rows * t, sample.grid.columns * t}, {s, s}};
  if (thumbnail) sizes.emplace_back(t, t);
  const std::vector<Image> views = render_augmented(image, augmentation, sizes, PlaneKind::image);
  sample.tiles = at::empty({sample.grid.tiles() + (thumbnail ? 1 : 0), 3, t, t}, at::kByte);
  for (int row = 0; row < sample.grid.rows; ++row) {
    for (int column = 0; column < sample.grid.columns; ++column) {
      write_channels_first(views[0], row * t, column * t, t, t, sample.tiles[row * sample.grid.columns + column]);
    }
  }
  if (thumbnail) write_channels_first(views[2], 0, 0, t, t, sample.tiles[sample.grid.tiles()]);
  sample.sam_image = at::empty({3, s, s}, at::kByte);
  write_channels_first(views[1], 0, 0, s, s, sample.sam_image);
  sample.mask = render_plane(record.mask, options.loss_size, options.loss_size);
  sample.fov = render_plane(record.fov, options.loss_size, options.loss_size);
  if (options.full_resolution) {
    sample.full_mask = render_plane(record.mask, height, width);
    sample.full_fov = render_plane(record.fov, height, width);
  }
  VT_CHECK(!record.texts.empty(), record.source, ": sample has no referring text");
  sample.text = record.texts[mix_seed(seed, 0x7e47) % record.texts.size()];
  sample.source = record.source;
  return sample;
}

ModelImages normalize_for_model(const Batch& batch, at::Device device, const ModelInputOptions& options,
                                at::ScalarType dtype) {
  return {normalize_on_device(batch.tiles, device, options, dtype, "tiles"),
          normalize_on_device(batch.sam_images, device, options, dtype, "sam_images")};
}

}  // namespace vesseltune::data
