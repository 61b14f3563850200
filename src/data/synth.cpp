#include "vesseltune/data/synth.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "vesseltune/core/check.h"
#include "vesseltune/data/random.h"

namespace vesseltune::data {

namespace {

double distance(double dx, double dy) { return std::sqrt(dx * dx + dy * dy); }

// A piece of vessel: a capsule from a to b whose radius goes from ra to rb.
struct Segment {
  double ax, ay, bx, by, ra, rb;
};

struct Tree {
  std::vector<Segment> segments;
  double darkness = 0.5;  // how much the vessel's centre darkens the background (0..1)
};

struct GrowthStyle {
  double step;         // segment length, pixels
  double tortuosity;   // standard deviation of the turn per step, radians
  double curvature;    // steady turn per step (arcades bend around the fovea)
  double branch_rate;  // chance per step of a side branch
  double taper;        // radius factor per step
  double min_radius;
  int max_depth;
};

// Grows one vessel from (x, y) in direction ANGLE, with side branches, until it is too thin, too long or
// leaves the disc of radius LIMIT around (cx, cy).
void grow(Tree& tree, Random& random, const GrowthStyle& style, double x, double y, double angle, double radius,
          double length, int depth, double cx, double cy, double limit) {
  double travelled = 0;
  double bend = style.curvature * (random.chance(0.5) ? 1 : -1) * (depth == 0 ? 1 : 0.3);
  while (travelled < length && radius >= style.min_radius) {
    angle += bend + style.tortuosity * random.normal();
    const double nx = x + style.step * std::cos(angle), ny = y + style.step * std::sin(angle);
    const double next_radius = radius * style.taper;
    tree.segments.push_back({x, y, nx, ny, radius, next_radius});
    x = nx;
    y = ny;
    radius = next_radius;
    travelled += style.step;
    if (distance(x - cx, y - cy) > limit) return;
    if (depth < style.max_depth && random.chance(style.branch_rate)) {
      // Murray-like split: the child is thinner, the parent loses a little.
      const double child = radius * random.uniform(0.55, 0.8);
      const double side = random.chance(0.5) ? 1 : -1;
      grow(tree, random, style, x, y, angle + side * random.uniform(0.45, 1.1), child,
           (length - travelled) * random.uniform(0.4, 0.9) + style.step * 8, depth + 1, cx, cy, limit);
      radius *= 0.92;
    }
  }
}

// Coarse random grid, bilinearly interpolated: smooth texture in [-1, 1] at a scale of SIZE / CELLS.
class ValueNoise {
 public:
  ValueNoise(Random& random, int cells, int size) : cells_(cells), scale_(static_cast<double>(cells) / size) {
    values_.resize(static_cast<size_t>(cells + 2) * (cells + 2));
    for (double& v : values_) v = random.uniform(-1, 1);
  }
  double at(double x, double y) const {
    const double gx = x * scale_, gy = y * scale_;
    const int ix = std::min(static_cast<int>(gx), cells_), iy = std::min(static_cast<int>(gy), cells_);
    const double fx = gx - ix, fy = gy - iy;
    const double sx = fx * fx * (3 - 2 * fx), sy = fy * fy * (3 - 2 * fy);  // smoothstep: no grid creases
    auto v = [&](int cx, int cy) { return values_[static_cast<size_t>(cy) * (cells_ + 2) + cx]; };
    return (1 - sy) * ((1 - sx) * v(ix, iy) + sx * v(ix + 1, iy)) + sy * ((1 - sx) * v(ix, iy + 1) + sx * v(ix + 1, iy + 1));
  }

 private:
  int cells_;
  double scale_;
  std::vector<double> values_;
};

// Rasterises the trees: mask = pixel centres inside a capsule; OPACITY = the strongest vessel profile
// (a tube seen from the side: sqrt(1 - (d/r)^2), softened over the last half pixel).
void rasterise(const std::vector<Tree>& trees, int size, Image& mask, std::vector<float>& opacity) {
  opacity.assign(static_cast<size_t>(size) * size, 0.0f);
  for (const Tree& tree : trees) {
    for (const Segment& s : tree.segments) {
      const double r = std::max(s.ra, s.rb) + 1;
      const int x0 = std::max(0, static_cast<int>(std::floor(std::min(s.ax, s.bx) - r)));
      const int x1 = std::min(size - 1, static_cast<int>(std::ceil(std::max(s.ax, s.bx) + r)));
      const int y0 = std::max(0, static_cast<int>(std::floor(std::min(s.ay, s.by) - r)));
      const int y1 = std::min(size - 1, static_cast<int>(std::ceil(std::max(s.ay, s.by) + r)));
      const double dx = s.bx - s.ax, dy = s.by - s.ay;
      const double length2 = std::max(dx * dx + dy * dy, 1e-12);
      for (int y = y0; y <= y1; ++y) {
        for (int x = x0; x <= x1; ++x) {
          const double px = x + 0.5 - s.ax, py = y + 0.5 - s.ay;
          const double t = std::clamp((px * dx + py * dy) / length2, 0.0, 1.0);
          const double ex = px - t * dx, ey = py - t * dy;
          const double d = std::sqrt(ex * ex + ey * ey);
          const double radius = s.ra + t * (s.rb - s.ra);
          if (d > radius + 0.5) continue;
          if (d <= radius) mask.at(y, x) = 1;
          const double inside = std::clamp(radius + 0.5 - d, 0.0, 1.0);
          const double profile = std::sqrt(std::max(0.0, 1.0 - (d * d) / ((radius + 0.5) * (radius + 0.5))));
          float& o = opacity[static_cast<size_t>(y) * size + x];
          o = std::max(o, static_cast<float>(tree.darkness * inside * (0.35 + 0.65 * profile)));
        }
      }
    }
  }
}

// A sample whose vessel mask (and per-pixel vessel opacity, for shading) is rasterised from `trees`; the
// image and field of view are left for the style to paint.
SampleRecord rasterised_sample(const std::vector<Tree>& trees, int size, uint8_t fov_fill, std::vector<float>& opacity) {
  SampleRecord record;
  record.mask = Image(size, size, 1);
  rasterise(trees, size, record.mask, opacity);
  record.image = Image(size, size, 3);
  record.fov = Image(size, size, 1, fov_fill);
  return record;
}

// Image grain: triangular noise of unit variance (two uniforms), far cheaper per pixel than a normal draw
// and indistinguishable at this amplitude.
double grain(Random& random) { return (random.unit() + random.unit() - 1.0) * 2.449489742783178; }

uint8_t to_byte(double v) { return static_cast<uint8_t>(std::clamp(std::lround(v), 0L, 255L)); }

SampleRecord fundus(Random& random, int size) {
  const double s = size;
  const double cx = s * random.uniform(0.48, 0.52), cy = s * random.uniform(0.48, 0.52);
  const double fov_radius = s * random.uniform(0.44, 0.48);
  const double side = random.chance(0.5) ? 1 : -1;  // left or right eye: disc on one side, fovea on the other
  const double disc_x = cx + side * fov_radius * random.uniform(0.35, 0.5), disc_y = cy + s * random.uniform(-0.05, 0.05);
  const double disc_r = s * random.uniform(0.06, 0.08);
  const double fovea_x = cx - side * fov_radius * 0.15, fovea_y = cy + s * random.uniform(-0.03, 0.03);

  const GrowthStyle style{s / 110, 0.09, 0.018, 0.07, 0.993, 0.6, 4};
  std::vector<Tree> trees;
  // Four arcades (artery and vein, up and down) bending around the fovea, plus nasal vessels.
  for (int k = 0; k < 6; ++k) {
    Tree tree;
    const bool vein = k % 2 == 1;
    tree.darkness = vein ? random.uniform(0.45, 0.6) : random.uniform(0.3, 0.42);
    const double vertical = (k / 2 == 0 ? -1 : 1);
    const double towards_fovea = side > 0 ? M_PI : 0.0;  // angle pointing from the disc to the fovea
    double angle = k < 4 ? towards_fovea - side * vertical * random.uniform(0.6, 1.1)
                         : towards_fovea + M_PI + random.uniform(-1.2, 1.2);
    const double radius = s * (vein ? random.uniform(0.0085, 0.011) : random.uniform(0.006, 0.008));
    grow(tree, random, style, disc_x, disc_y, angle, radius, s * random.uniform(0.7, 1.0), 0, cx, cy, fov_radius);
    trees.push_back(std::move(tree));
  }
  std::vector<float> opacity;
  SampleRecord record = rasterised_sample(trees, size, 0, opacity);
  ValueNoise texture(random, 12, size);
  const double base[3] = {random.uniform(190, 230), random.uniform(75, 110), random.uniform(25, 50)};
  const double tilt_x = random.uniform(-0.15, 0.15), tilt_y = random.uniform(-0.15, 0.15);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const double r = distance(px - cx, py - cy) / fov_radius;
      const size_t i = static_cast<size_t>(y) * size + x;
      if (r > 1.0) {
        record.mask.pixels[i] = 0;
        for (int c = 0; c < 3; ++c) record.image.pixels[3 * i + c] = to_byte(3 + 2 * grain(random));
        continue;
      }
      record.fov.pixels[i] = 1;
      double light = 1.0 - 0.4 * r * r + tilt_x * (px - cx) / fov_radius + tilt_y * (py - cy) / fov_radius;
      light *= 1.0 + 0.06 * texture.at(px, py);
      const double fx = px - fovea_x, fy = py - fovea_y, spread = s * 0.05;
      const double fovea = std::exp(-(fx * fx + fy * fy) / (2 * spread * spread));
      light *= 1.0 - 0.3 * fovea;
      const double disc_d = distance(px - disc_x, (py - disc_y) * 0.9) / disc_r;
      const double disc = 1.0 / (1.0 + std::exp((disc_d - 1.0) * 12));  // soft-edged bright disc
      const double vessel = opacity[i];
      for (int c = 0; c < 3; ++c) {
        double v = base[c] * light;
        v += disc * (c == 0 ? 40 : c == 1 ? 110 : 80) * (0.8 + 0.2 * light);
        v *= 1.0 - vessel * (c == 0 ? 0.35 : 0.8);  // blood absorbs green and blue far more than red
        record.image.pixels[3 * i + c] = to_byte(v + 3.0 * grain(random));
      }
    }
  }
  return record;
}

SampleRecord angio(Random& random, int size) {
  const double s = size;
  const GrowthStyle style{s / 90, 0.16, 0.01, 0.09, 0.994, 0.6, 4};
  std::vector<Tree> trees;
  // One or two coronary trees entering from the top or a side, spreading across the frame.
  const int count = random.chance(0.5) ? 1 : 2;
  for (int k = 0; k < count; ++k) {
    Tree tree;
    tree.darkness = random.uniform(0.45, 0.65);
    const double x = s * random.uniform(0.2, 0.8), y = s * random.uniform(0.02, 0.25);
    const double angle = M_PI / 2 + random.uniform(-0.9, 0.9);
    grow(tree, random, style, x, y, angle, s * random.uniform(0.009, 0.014), s * random.uniform(0.8, 1.2), 0, s / 2,
         s / 2, s * 0.75);
    trees.push_back(std::move(tree));
  }
  std::vector<float> opacity;
  SampleRecord record = rasterised_sample(trees, size, 1, opacity);
  ValueNoise coarse(random, 4, size), fine(random, 24, size);
  const double level = random.uniform(140, 185);
  const double band_angle = random.uniform(0, M_PI), band_period = s * random.uniform(0.25, 0.45);
  for (int y = 0; y < size; ++y) {
    for (int x = 0; x < size; ++x) {
      const double px = x + 0.5, py = y + 0.5;
      const size_t i = static_cast<size_t>(y) * size + x;
      const double along = px * std::cos(band_angle) + py * std::sin(band_angle);
      double v = level * (1.0 + 0.15 * coarse.at(px, py) + 0.05 * fine.at(px, py)) +
                 10 * std::sin(2 * M_PI * along / band_period);  // rib- and diaphragm-like bands
      const double r = distance(px - s / 2, py - s / 2) / (s * 0.7);
      v *= 1.0 - 0.25 * r * r;
      v *= 1.0 - opacity[i];
      const uint8_t grey = to_byte(v + 5.0 * grain(random));
      for (int c = 0; c < 3; ++c) record.image.pixels[3 * i + c] = grey;
    }
  }
  return record;
}

}  // namespace

SynthStyle parse_synth_style(const std::string& name) {
  for (SynthStyle style : {SynthStyle::fundus, SynthStyle::angio, SynthStyle::mixed}) {
    if (synth_style_name(style) == name) return style;
  }
  VT_FAIL("unknown synthetic style '", name, "'; use fundus, angio or mixed");
}

std::string synth_style_name(SynthStyle style) {
  switch (style) {
    case SynthStyle::fundus: return "fundus";
    case SynthStyle::angio: return "angio";
    case SynthStyle::mixed: return "mixed";
  }
  return "?";
}

SampleRecord synthesize_sample(int64_t index, const SynthOptions& options) {
  VT_CHECK(options.size >= 64, "synthetic images must be at least 64 pixels, got ", options.size);
  VT_CHECK(index >= 0, "synthetic sample index must be non-negative, got ", index);
  const SynthStyle style = options.style != SynthStyle::mixed ? options.style
                           : index % 2 == 0                   ? SynthStyle::fundus
                                                              : SynthStyle::angio;
  Random random(mix_seed(options.seed, static_cast<uint64_t>(index), 0x5e17));
  SampleRecord record = style == SynthStyle::fundus ? fundus(random, options.size) : angio(random, options.size);
  record.texts = {kDefaultText};
  record.source = "synthetic:" + synth_style_name(style) + ":" + std::to_string(index);
  record.dataset = "synthetic";
  record.original_height = options.size;
  record.original_width = options.size;
  return record;
}

}  // namespace vesseltune::data
