#include "vesseltune/export/weight_dtypes.h"

namespace vesseltune::exporting {

at::Tensor WeightDtypes::convert(const std::string& name, const at::Tensor& tensor) const {
  if (!tensor.is_floating_point()) return tensor;
  at::ScalarType dtype = at::kBFloat16;
  if (requested) {
    dtype = *requested;
  } else if (base != nullptr && base->contains(name)) {
    dtype = base->view(name).scalar_type();
  }
  return tensor.to(dtype);
}

}  // namespace vesseltune::exporting
