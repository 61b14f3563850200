#include "vesseltune/eval/overlay.h"

#include <algorithm>
#include <cmath>  // stb_easy_font.h calls ceil

#include <stb_easy_font.h>

#include "vesseltune/core/check.h"
#include "vesseltune/data/resample.h"

namespace vesseltune::eval {
namespace {

constexpr int kLineHeight = 12;  // stb_easy_font's line pitch, in font pixels
constexpr int kGlyphHeight = 7;  // height of a capital letter, in font pixels
constexpr int kGap = 4;          // contact sheet: pixels between cells and around them
constexpr uint8_t kWhite[3] = {255, 255, 255};

void check_mask(const at::Tensor& mask, const data::Image& image, const char* what) {
  VT_CHECK(mask.dim() == 2 && mask.scalar_type() == at::kByte && mask.device().is_cpu(), "overlay: the ", what,
           " mask must be a CPU uint8 [H, W] tensor of 0/1, got ", mask.scalar_type(), " ", mask.sizes());
  VT_CHECK(mask.size(0) == image.height && mask.size(1) == image.width, "overlay: the ", what, " mask is ",
           mask.sizes(), " but the image is ", image.height, "x", image.width);
}

void fill(data::Image& canvas, int x0, int y0, int x1, int y1, const uint8_t colour[3]) {
  x0 = std::max(x0, 0), y0 = std::max(y0, 0), x1 = std::min(x1, canvas.width), y1 = std::min(y1, canvas.height);
  for (int y = y0; y < y1; ++y) {
    for (int x = x0; x < x1; ++x) std::copy(colour, colour + 3, canvas.ptr(y, x));
  }
}

// TEXT (one line) with its top-left corner at (X, Y), stb_easy_font's pixels magnified SCALE times, cut at
// column RIGHT and at the canvas's edges. Characters stb_easy_font does not have (outside printable ASCII) are
// drawn as '?'.
void draw_text(data::Image& canvas, int x, int y, int scale, const std::string& text, const uint8_t colour[3],
               int right) {
  std::string printable = text;
  for (char& c : printable) {
    if (c < 32 || c > 126) c = '?';
  }
  // About 270 bytes of vertices per character (stb_easy_font's estimate); 64 bytes per quad of 4 vertices,
  // each x, y, z as floats and an RGBA colour.
  std::vector<char> vertices(400 * (printable.size() + 1));
  const int quads = stb_easy_font_print(0, 0, printable.data(), nullptr, vertices.data(),
                                        static_cast<int>(vertices.size()));
  for (int q = 0; q < quads; ++q) {
    // Vertex 0 is the quad's top-left corner and vertex 2 its bottom-right; both are whole font pixels.
    const float* top_left = reinterpret_cast<const float*>(vertices.data() + q * 64);
    const float* bottom_right = reinterpret_cast<const float*>(vertices.data() + q * 64 + 32);
    const int x0 = x + scale * static_cast<int>(top_left[0]), x1 = x + scale * static_cast<int>(bottom_right[0]);
    const int y0 = y + scale * static_cast<int>(top_left[1]), y1 = y + scale * static_cast<int>(bottom_right[1]);
    fill(canvas, x0, y0, std::min(x1, right), y1, colour);
  }
}

data::Image to_rgb(const data::Image& image) {
  if (image.channels == 3) return image;
  VT_CHECK(image.channels == 1, "contact sheet: entries must have 1 or 3 channels, got ", image.channels);
  data::Image rgb(image.height, image.width, 3);
  for (size_t i = 0; i < image.pixels.size(); ++i) std::fill_n(&rgb.pixels[3 * i], 3, image.pixels[i]);
  return rgb;
}

}  // namespace

data::Image render_overlay(const data::Image& image, const at::Tensor& predicted, const at::Tensor& truth,
                           const at::Tensor& fov) {
  VT_CHECK(image.channels == 3 && !image.empty(), "overlay: the image must be RGB, got ", image.channels,
           " channel(s) of ", image.height, "x", image.width);
  check_mask(predicted, image, "predicted");
  check_mask(truth, image, "truth");
  check_mask(fov, image, "field of view");
  const at::Tensor p = predicted.contiguous(), t = truth.contiguous(), f = fov.contiguous();
  const uint8_t *pp = p.data_ptr<uint8_t>(), *tp = t.data_ptr<uint8_t>(), *fp = f.data_ptr<uint8_t>();

  // The legend scales with the image so that it stays legible on the 3504-pixel-wide HRF images.
  const int scale = std::max(1, image.width / 320);
  const int legend_height = scale * (kGap + 3 * kLineHeight);
  data::Image out(image.height + legend_height, image.width, 3, 0);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const size_t i = static_cast<size_t>(y) * image.width + x;
      const uint8_t* colour = pp[i] && tp[i] ? kTruePositiveColour
                              : pp[i]        ? kFalsePositiveColour
                              : tp[i]        ? kFalseNegativeColour
                                             : image.ptr(y, x);
      const int shift = fp[i] ? 0 : 1;  // outside the FOV: half brightness
      for (int c = 0; c < 3; ++c) out.at(y, x, c) = static_cast<uint8_t>(colour[c] >> shift);
    }
  }
  // Each entry in words, or in short where the words would be cut (images narrower than about 300 pixels).
  struct Entry {
    const uint8_t* colour;
    const char* words;
    const char* in_short;
  };
  const Entry entries[3] = {
      {kTruePositiveColour, "green: vessel found (true positive)", "green: true positive"},
      {kFalsePositiveColour, "red: background called vessel (false positive)", "red: false positive"},
      {kFalseNegativeColour, "blue: vessel missed (false negative)", "blue: false negative"}};
  const int text_left = scale * (2 * kGap + kGlyphHeight);
  bool fits = true;
  for (const Entry& entry : entries) {
    fits = fits && text_left + scale * stb_easy_font_width(const_cast<char*>(entry.words)) <= out.width;
  }
  for (int line = 0; line < 3; ++line) {
    const int top = image.height + scale * (kGap + line * kLineHeight);
    fill(out, scale * kGap, top, scale * (kGap + kGlyphHeight), top + scale * kGlyphHeight, entries[line].colour);
    draw_text(out, text_left, top, scale, fits ? entries[line].words : entries[line].in_short, kWhite, out.width);
  }
  return out;
}

data::Image render_mask_overlay(const data::Image& image, const at::Tensor& mask) {
  data::Image out = to_rgb(image);
  check_mask(mask, out, "predicted");
  const uint8_t* m = mask.contiguous().data_ptr<uint8_t>();
  for (int y = 0; y < out.height; ++y) {
    for (int x = 0; x < out.width; ++x) {
      if (!m[static_cast<size_t>(y) * out.width + x]) continue;
      uint8_t* p = out.ptr(y, x);
      for (int c = 0; c < 3; ++c) p[c] = static_cast<uint8_t>((p[c] + kTruePositiveColour[c]) / 2);
    }
  }
  return out;
}

data::Image contact_sheet(const std::vector<SheetEntry>& entries, int columns, int cell_width) {
  VT_CHECK(!entries.empty(), "contact sheet: no entries");
  VT_CHECK(columns > 0 && cell_width > 0, "contact sheet: columns (", columns, ") and cell width (", cell_width,
           ") must be positive");
  std::vector<data::Image> cells;
  int image_height = 0;
  for (const SheetEntry& entry : entries) {
    VT_CHECK(!entry.image.empty(), "contact sheet: the image of '", entry.caption, "' is empty");
    const int height = std::max(1, static_cast<int>(std::lround(static_cast<double>(entry.image.height) *
                                                                cell_width / entry.image.width)));
    cells.push_back(to_rgb(data::resize_bicubic(entry.image, height, cell_width)));
    image_height = std::max(image_height, height);
  }
  const int cell_height = image_height + kLineHeight + 2;
  const int rows = static_cast<int>((entries.size() + columns - 1) / columns);
  data::Image sheet(kGap + rows * (cell_height + kGap), kGap + columns * (cell_width + kGap), 3, 0);
  for (size_t i = 0; i < cells.size(); ++i) {
    const int left = kGap + static_cast<int>(i % columns) * (cell_width + kGap);
    const int top = kGap + static_cast<int>(i / columns) * (cell_height + kGap);
    for (int y = 0; y < cells[i].height; ++y) std::copy_n(cells[i].ptr(y), 3 * cell_width, sheet.ptr(top + y, left));
    draw_text(sheet, left, top + image_height + 2, 1, entries[i].caption, kWhite, left + cell_width);
  }
  return sheet;
}

data::Image mask_image(const at::Tensor& mask) {
  VT_CHECK(mask.dim() == 2 && mask.scalar_type() == at::kByte && mask.device().is_cpu(),
           "mask_image: the mask must be a CPU uint8 [H, W] tensor of 0/1, got ", mask.scalar_type(), " ",
           mask.sizes());
  const at::Tensor m = mask.contiguous();
  data::Image image(static_cast<int>(m.size(0)), static_cast<int>(m.size(1)), 1);
  const uint8_t* values = m.data_ptr<uint8_t>();
  for (size_t i = 0; i < image.pixels.size(); ++i) {
    VT_CHECK(values[i] <= 1, "mask_image: the mask holds ", int(values[i]), " at pixel ", i, "; it must hold 0 or 1");
    image.pixels[i] = values[i] ? 255 : 0;
  }
  return image;
}

}  // namespace vesseltune::eval
