#pragma once
// Two 4x4 images whose metrics are worked out by hand in test_vessel_metrics.cpp and again, independently, in
// read_report_with_h5py.py. The FOV is the whole image.
//
// "a": truth = the top-left 2x2 square; probabilities      "b": truth = the top row; probabilities
//      0.9 0.6 0.7  0.1                                         1 1 1 0
//      0.4 0.8 0.2  0.0                                         0 0 0 0
//      0.3 0.1 0.55 0.2                                         0 0 0 0
//      0.0 0.0 0.1  0.0                                         0 0 0 1
// At threshold 0.5 (vessel when p > 0.5): a: TP 3, FP 2, FN 1, TN 10; b: TP 3, FP 1, FN 1, TN 11.

#include <ATen/ATen.h>

#include <string>

#include "vesseltune/metrics/vessel_metrics.h"

namespace vesseltune::metrics::hand {

inline at::Tensor probabilities(const std::string& name) {
  const double a[16] = {0.9, 0.6, 0.7, 0.1, 0.4, 0.8, 0.2, 0.0, 0.3, 0.1, 0.55, 0.2, 0.0, 0.0, 0.1, 0.0};
  const double b[16] = {1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return at::tensor(at::ArrayRef<double>(name == "a" ? a : b, 16), at::kDouble).reshape({4, 4});
}

inline at::Tensor truth(const std::string& name) {
  at::Tensor mask = at::zeros({4, 4}, at::kByte);
  if (name == "a") {
    mask.slice(0, 0, 2).slice(1, 0, 2).fill_(1);
  } else {
    mask[0].fill_(1);
  }
  return mask;
}

inline ImageEvaluation evaluate(const std::string& name) {
  return evaluate_image(name, probabilities(name), truth(name), at::ones({4, 4}, at::kByte), 0.5);
}

}  // namespace vesseltune::metrics::hand
