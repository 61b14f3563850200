#include "vesseltune/io/hdf5.h"

#include <mutex>

#include "vesseltune/core/check.h"

namespace vesseltune::io::hdf5 {

namespace {

// Variable-length UTF-8 strings: what h5py writes for str and reads back as str.
Handle string_type() {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type.get(), H5T_VARIABLE);
  H5Tset_cset(type.get(), H5T_CSET_UTF8);
  return type;
}

void write_attribute(hid_t object, const char* name, hid_t type, hid_t space, const void* data) {
  Handle attribute(H5Acreate2(object, name, type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  VT_CHECK(attribute.valid(), "cannot create HDF5 attribute '", name, "'");
  VT_CHECK(H5Awrite(attribute.get(), type, data) >= 0, "cannot write HDF5 attribute '", name, "'");
}

// Opens NAME on OBJECT if it exists; invalid handle otherwise.
Handle open_attribute(hid_t object, const char* name) {
  if (H5Aexists(object, name) <= 0) return {};
  return Handle(H5Aopen(object, name, H5P_DEFAULT), H5Aclose);
}

bool read_strings(hid_t object, const char* name, std::vector<std::string>& values, bool scalar) {
  Handle attribute = open_attribute(object, name);
  if (!attribute.valid()) return false;
  Handle file_type(H5Aget_type(attribute.get()), H5Tclose);
  if (H5Tget_class(file_type.get()) != H5T_STRING || H5Tis_variable_str(file_type.get()) <= 0) return false;
  Handle space(H5Aget_space(attribute.get()), H5Sclose);
  const int rank = H5Sget_simple_extent_ndims(space.get());
  if (scalar != (rank == 0)) return false;
  const auto count = static_cast<size_t>(H5Sget_simple_extent_npoints(space.get()));
  std::vector<char*> raw(count, nullptr);
  Handle memory_type = string_type();
  if (H5Aread(attribute.get(), memory_type.get(), raw.data()) < 0) return false;
  values.clear();
  for (char* text : raw) values.emplace_back(text ? text : "");
  H5Dvlen_reclaim(memory_type.get(), space.get(), H5P_DEFAULT, raw.data());
  return true;
}

}  // namespace

void silence_errors() {
  static std::once_flag once;
  std::call_once(once, [] { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); });
}

std::vector<std::string> member_names(hid_t group, const std::string& where) {
  H5G_info_t info;
  VT_CHECK(H5Gget_info(group, &info) >= 0, where, ": cannot list the group's members");
  std::vector<std::string> names;
  for (hsize_t i = 0; i < info.nlinks; ++i) {
    const ssize_t size = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
    VT_CHECK(size >= 0, where, ": cannot read the name of member ", i);
    std::string name(static_cast<size_t>(size), '\0');
    H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size() + 1, H5P_DEFAULT);
    names.push_back(name);
  }
  return names;
}

void write_string_attribute(hid_t object, const char* name, const std::string& value) {
  Handle type = string_type();
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  const char* text = value.c_str();
  write_attribute(object, name, type.get(), space.get(), &text);
}

void write_string_list_attribute(hid_t object, const char* name, const std::vector<std::string>& values) {
  Handle type = string_type();
  const hsize_t count = values.size();
  Handle space(H5Screate_simple(1, &count, nullptr), H5Sclose);
  std::vector<const char*> texts;
  for (const std::string& value : values) texts.push_back(value.c_str());
  write_attribute(object, name, type.get(), space.get(), texts.data());
}

void write_int_attribute(hid_t object, const char* name, const std::vector<int64_t>& values) {
  const hsize_t count = values.size();
  Handle space = values.size() == 1 ? Handle(H5Screate(H5S_SCALAR), H5Sclose)
                                    : Handle(H5Screate_simple(1, &count, nullptr), H5Sclose);
  write_attribute(object, name, H5T_STD_I64LE, space.get(), values.data());
}

bool read_string_attribute(hid_t object, const char* name, std::string& value) {
  std::vector<std::string> values;
  if (!read_strings(object, name, values, true) || values.size() != 1) return false;
  value = values[0];
  return true;
}

bool read_string_list_attribute(hid_t object, const char* name, std::vector<std::string>& values) {
  return read_strings(object, name, values, false);
}

bool read_int_attribute(hid_t object, const char* name, std::vector<int64_t>& values) {
  Handle attribute = open_attribute(object, name);
  if (!attribute.valid()) return false;
  Handle file_type(H5Aget_type(attribute.get()), H5Tclose);
  if (H5Tget_class(file_type.get()) != H5T_INTEGER) return false;
  Handle space(H5Aget_space(attribute.get()), H5Sclose);
  values.assign(static_cast<size_t>(H5Sget_simple_extent_npoints(space.get())), 0);
  return H5Aread(attribute.get(), H5T_NATIVE_INT64, values.data()) >= 0;
}

}  // namespace vesseltune::io::hdf5
