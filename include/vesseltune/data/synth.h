#pragma once
// Procedural vessel images with exact masks, the embedded default data for the demo and the tests.
// Branching trees grown as chains of short tapered capsules (widths shrinking at each branching, random
// turning for tortuosity, separate trees crossing each other), drawn over
//   fundus: orange retina in a circular FOV, optic disc, darker fovea, illumination gradient, noise;
//   angio:  grey X-ray-like textured background with dark contrast-filled vessels, quantum noise.
// The mask is exactly the set of pixel centres inside a capsule. Sample i depends only on (seed, i).

#include <cstdint>
#include <string>

#include "vesseltune/data/shard_format.h"

namespace vesseltune::data {

enum class SynthStyle { fundus, angio, mixed };  // mixed: every other sample angiography-like

SynthStyle parse_synth_style(const std::string& name);
std::string synth_style_name(SynthStyle style);

struct SynthOptions {
  int64_t count = 1220;  // the seed's data set size
  uint64_t seed = 0;
  SynthStyle style = SynthStyle::mixed;
  int size = 256;        // square images, pixels (the embedded default's; SAM2 at 256 sees them 1:1)
};

// Sample INDEX: image, mask, FOV, texts {"blood vessels"}, dataset "synthetic", source
// "synthetic:<style>:<index>"; split left empty for the packer to assign.
SampleRecord synthesize_sample(int64_t index, const SynthOptions& options);

}  // namespace vesseltune::data
