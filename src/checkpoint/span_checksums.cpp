#include "vesseltune/checkpoint/span_checksums.h"

#include "vesseltune/core/check.h"
#include "vesseltune/io/content_hash.h"
#include "vesseltune/io/hdf5.h"

namespace vesseltune::checkpoint {
namespace {

using io::hdf5::Handle;
constexpr const char* kGroup = "checksums";
constexpr hsize_t kColumns = 4;

}  // namespace

SpanChecksum span_checksum(int field, int64_t offset, const at::Tensor& values) {
  VT_CHECK(values.scalar_type() == at::kFloat && values.is_contiguous() && values.device().is_cpu(),
           "span_checksum: fp32 contiguous host values expected");
  return {static_cast<uint64_t>(field), static_cast<uint64_t>(offset), static_cast<uint64_t>(values.numel()),
          io::content_hash(values.data_ptr(), values.nbytes())};
}

void write_span_checksums(hid_t optimizer_group, int writer, const std::vector<SpanChecksum>& records,
                          const std::string& where) {
  Handle group(H5Lexists(optimizer_group, kGroup, H5P_DEFAULT) > 0
                   ? H5Gopen2(optimizer_group, kGroup, H5P_DEFAULT)
                   : H5Gcreate2(optimizer_group, kGroup, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT),
               H5Gclose);
  VT_CHECK(group.valid(), where, ": cannot create optimizer/checksums");
  const hsize_t dims[2] = {records.size(), kColumns};
  Handle space(H5Screate_simple(2, dims, nullptr), H5Sclose);
  const std::string name = "rank_" + std::to_string(writer);
  Handle dataset(H5Dcreate2(group.get(), name.c_str(), H5T_STD_U64LE, space.get(), H5P_DEFAULT, H5P_DEFAULT,
                            H5P_DEFAULT),
                 H5Dclose);
  VT_CHECK(dataset.valid(), where, ": cannot create optimizer/checksums/", name);
  VT_CHECK(records.empty() ||
               H5Dwrite(dataset.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, records.data()) >= 0,
           where, ": cannot write optimizer/checksums/", name, " (disk full?)");
}

std::vector<SpanChecksum> read_span_checksums(hid_t optimizer_group, const std::string& where) {
  std::vector<SpanChecksum> all;
  if (H5Lexists(optimizer_group, kGroup, H5P_DEFAULT) <= 0) return all;
  Handle group(H5Gopen2(optimizer_group, kGroup, H5P_DEFAULT), H5Gclose);
  for (const std::string& name : io::hdf5::member_names(group.get(), where + ": optimizer/checksums")) {
    Handle dataset(H5Dopen2(group.get(), name.c_str(), H5P_DEFAULT), H5Dclose);
    Handle space(H5Dget_space(dataset.get()), H5Sclose);
    hsize_t dims[2] = {0, 0};
    VT_CHECK(dataset.valid() && H5Sget_simple_extent_ndims(space.get()) == 2 &&
                 H5Sget_simple_extent_dims(space.get(), dims, nullptr) == 2 && dims[1] == kColumns,
             where, ": optimizer/checksums/", name, " is not a [n, 4] table");
    std::vector<SpanChecksum> records(dims[0]);
    VT_CHECK(records.empty() ||
                 H5Dread(dataset.get(), H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, records.data()) >= 0,
             where, ": optimizer/checksums/", name, " cannot be read (damaged)");
    all.insert(all.end(), records.begin(), records.end());
  }
  return all;
}

void verify_span(const SpanChecksum& record, const at::Tensor& values, const std::string& field_name,
                 const std::string& tensor, const std::string& where) {
  VT_CHECK(io::content_hash(values.data_ptr(), values.nbytes()) == record.hash, where, ": optimizer/", field_name,
           ": elements [", record.offset, ", ", record.offset + record.numel, ") (tensor '", tensor,
           "') do not match the content hash their writer recorded: the checkpoint is damaged");
}

}  // namespace vesseltune::checkpoint
