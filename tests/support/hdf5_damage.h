#pragma once
// Damage on purpose, for the integrity tests: a value written through HDF5 itself (the chunk's Fletcher-32 is
// recomputed, as for a value damaged in memory before a write), and where a dataset's chunk lies in its file (to
// change its bytes behind HDF5's back).

#include <hdf5.h>

#include <string>
#include <utility>

namespace vesseltune::testing_support {

template <typename T>
hid_t native_type();
template <>
inline hid_t native_type<float>() { return H5T_NATIVE_FLOAT; }
template <>
inline hid_t native_type<double>() { return H5T_NATIVE_DOUBLE; }

// Element INDEX of the 1-D dataset DATASET of FILE becomes VALUE. Returns false when HDF5 refuses.
template <typename T>
bool overwrite_value(const std::string& file, const char* dataset, hsize_t index, T value) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset, H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  const hsize_t count = 1;
  H5Sselect_hyperslab(space, H5S_SELECT_SET, &index, nullptr, &count, nullptr);
  const hid_t memory = H5Screate_simple(1, &count, nullptr);
  const bool written = H5Dwrite(d, native_type<T>(), memory, space, H5P_DEFAULT, &value) >= 0;
  H5Sclose(memory);
  H5Sclose(space);
  H5Dclose(d);
  return H5Fclose(f) >= 0 && written;
}

// The file offset and stored size of the first chunk of DATASET in FILE ({0, 0} when HDF5 cannot say).
inline std::pair<haddr_t, hsize_t> first_chunk(const std::string& file, const std::string& dataset) {
  const hid_t f = H5Fopen(file.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  const hid_t d = H5Dopen2(f, dataset.c_str(), H5P_DEFAULT);
  const hid_t space = H5Dget_space(d);
  hsize_t origin[H5S_MAX_RANK];
  unsigned filters = 0;
  haddr_t address = 0;
  hsize_t bytes = 0;
  if (H5Dget_chunk_info(d, space, 0, origin, &filters, &address, &bytes) < 0) address = 0, bytes = 0;
  H5Sclose(space);
  H5Dclose(d);
  H5Fclose(f);
  return {address, bytes};
}

}  // namespace vesseltune::testing_support
