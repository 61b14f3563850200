#pragma once
// Seeded randomness that is the same on every machine and standard library: std::shuffle and the
// std:: distributions are implementation-defined, and the sampler's order (hence resuming elsewhere), the
// train/val split, the augmentations and the synthetic images must not depend on them.

#include <cstdint>
#include <random>
#include <vector>

namespace vesseltune::data {

// 0..count-1 in the Fisher-Yates order drawn from mt19937_64(seed).
std::vector<int64_t> seeded_permutation(int64_t count, uint64_t seed);

// Mixes several numbers into one well-spread 64-bit seed (splitmix64 steps), e.g. (seed, epoch, position).
uint64_t mix_seed(uint64_t a, uint64_t b, uint64_t c = 0);

// Uniform and normal draws computed from raw mt19937_64 output.
class Random {
 public:
  explicit Random(uint64_t seed) : engine_(seed) {}
  double unit() { return static_cast<double>(engine_() >> 11) * 0x1.0p-53; }  // [0, 1)
  double uniform(double low, double high) { return low + (high - low) * unit(); }
  bool chance(double probability) { return unit() < probability; }
  int below(int bound) { return static_cast<int>(unit() * bound); }  // 0..bound-1
  double normal();  // mean 0, standard deviation 1 (Box-Muller)

 private:
  std::mt19937_64 engine_;
};

}  // namespace vesseltune::data
