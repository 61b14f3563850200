#pragma once
// Damage that a checksum does not catch: one value written through HDF5 itself (the chunk's checksum is recomputed),
// as a value damaged in memory before a write would be.

#include <hdf5.h>

#include <string>

namespace vesseltune::testing_support {

// Element INDEX of the 1-D float dataset DATASET of FILE becomes VALUE. Returns false when HDF5 refuses.
inline bool overwrite_float(const std::string& file, const char* dataset, hsize_t index, float value) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  const hsize_t count = 1;
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &index, nullptr, &count, nullptr);
  const hid_t memory = H5Screate_simple(1, &count, nullptr);
  const bool written = H5Dwrite(d, H5T_NATIVE_FLOAT, memory, space, H5P_DEFAULT, &value) >= 0;
  H5Sclose(memory);
  H5Sclose(space);
  H5Dclose(d);
  return H5Fclose(f) >= 0 && written;
}

}  // namespace vesseltune::testing_support
