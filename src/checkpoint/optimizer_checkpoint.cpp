#include "vesseltune/checkpoint/optimizer_checkpoint.h"

#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <set>

#include "vesseltune/checkpoint/span_checksums.h"
#include "vesseltune/core/check.h"
#include "vesseltune/core/fault_injection.h"
#include "vesseltune/core/log.h"
#include "vesseltune/io/hdf5.h"

namespace vesseltune::checkpoint {
namespace {

using io::hdf5::Handle;

constexpr const char* kFields[] = {"master", "exp_avg", "exp_avg_sq"};
constexpr hsize_t kChunk = 1 << 20;  // elements per chunk: the unit of Fletcher-32 checking

std::string describe_tensors(const optim::FlatLayout& layout) {
  nlohmann::json tensors = nlohmann::json::array();
  for (const auto& slot : layout.slots()) {
    tensors.push_back({{"name", slot.name}, {"shape", slot.shape}, {"offset", slot.canonical_offset}});
  }
  return tensors.dump();
}

Handle open_file(const std::string& path, unsigned flags) {
  io::hdf5::silence_errors();
  Handle file(H5Fopen(path.c_str(), flags, H5P_DEFAULT), H5Fclose);
  VT_CHECK(file.valid(), "cannot open checkpoint '", path, "'");
  return file;
}

// Copies between a span (any device) and the dataset's elements [offset, offset + numel); returns the host values.
at::Tensor transfer(hid_t dataset, int64_t offset, at::Tensor values, bool write, const std::string& where) {
  Handle file_space(H5Dget_space(dataset), H5Sclose);
  const hsize_t start = static_cast<hsize_t>(offset), count = static_cast<hsize_t>(values.numel());
  VT_CHECK(H5Sselect_hyperslab(file_space.get(), H5S_SELECT_SET, &start, nullptr, &count, nullptr) >= 0, where,
           ": bad selection");
  Handle memory_space(H5Screate_simple(1, &count, nullptr), H5Sclose);
  at::Tensor host = values.device().is_cpu() && values.is_contiguous() ? values : values.to(at::kCPU).contiguous();
  if (write) {
    VT_CHECK(H5Dwrite(dataset, H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(), H5P_DEFAULT, host.data_ptr()) >= 0,
             where, ": write failed (disk full?)");
  } else {
    VT_CHECK(H5Dread(dataset, H5T_NATIVE_FLOAT, memory_space.get(), file_space.get(), H5P_DEFAULT, host.data_ptr()) >= 0,
             where, ": read failed (corrupt or truncated: checksum mismatch)");
    if (host.data_ptr() != values.data_ptr()) values.copy_(host);
  }
  return host;
}

// The elements a checksum RECORD covers, read back from its field's dataset.
at::Tensor read_span(hid_t group, const SpanChecksum& record, const std::string& path) {
  VT_CHECK(record.field < 3, path, ": optimizer/checksums names field ", record.field);
  Handle dataset(H5Dopen2(group, kFields[record.field], H5P_DEFAULT), H5Dclose);
  at::Tensor values = at::empty({static_cast<int64_t>(record.numel)}, at::kFloat);
  transfer(dataset.get(), static_cast<int64_t>(record.offset), values, false,
           path + ": optimizer/" + kFields[record.field]);
  return values;
}

// The trainable tensor that holds canonical element ELEMENT, and the element's index in it.
std::pair<std::string, int64_t> tensor_at(const optim::FlatLayout& layout, int64_t element) {
  for (const auto& slot : layout.slots()) {
    if (element >= slot.canonical_offset && element < slot.canonical_offset + slot.numel) {
      return {slot.name, element - slot.canonical_offset};
    }
  }
  return {"(padding)", element};
}

// The name of the tensor (in the checkpoint's "tensors" list) that holds canonical element OFFSET.
std::string tensor_named_at(const nlohmann::json& tensors, uint64_t offset) {
  std::string name = "(padding)";
  for (const auto& tensor : tensors) {
    if (tensor.at("offset").get<uint64_t>() <= offset) name = tensor.at("name").get<std::string>();
  }
  return name;
}

// A value a finite run never stores (non-finite steps are skipped) is damage the checksum did not catch.
void check_finite(const at::Tensor& values, int64_t canonical_offset, const optim::FlatLayout& layout,
                  const std::string& where) {
  const at::Tensor flat = values.reshape({-1});
  const at::Tensor bad = at::isfinite(flat).logical_not();
  if (!bad.any().item<bool>()) return;
  const int64_t first = bad.nonzero()[0][0].item<int64_t>();
  const auto [name, index] = tensor_at(layout, canonical_offset + first);
  VT_FAIL(where, ": non-finite value ", flat[first].item<float>(), " in tensor '", name, "' (element ", index, ", ",
          bad.sum().item<int64_t>(), " such values in this rank's part): the checkpoint is damaged");
}

// The checksums of VALUES (written at canonical OFFSET of FIELD), one per trainable tensor they touch (padding
// between tensors goes with the tensor before it), so that a mismatch names the damaged tensor.
void add_checksums_by_tensor(int field, int64_t offset, const at::Tensor& values, const optim::FlatLayout& layout,
                             std::vector<SpanChecksum>& checksums) {
  const int64_t end = offset + values.numel();
  int64_t start = offset;
  for (const auto& slot : layout.slots()) {  // in canonical order
    if (slot.canonical_offset <= start) continue;
    const int64_t cut = std::min(end, slot.canonical_offset);
    if (cut > start) checksums.push_back(span_checksum(field, start, values.narrow(0, start - offset, cut - start)));
    start = cut;
    if (start == end) return;
  }
  if (end > start) checksums.push_back(span_checksum(field, start, values.narrow(0, start - offset, end - start)));
}

// Re-reads the checkpoint's recorded spans that fall to this rank (record i to rank i mod size: together the ranks
// check the whole state once) and compares their content hashes.
void verify_share_of_checksums(hid_t group, const optim::ZeroOptimizer& optimizer, const std::string& path) {
  const std::vector<SpanChecksum> records = read_span_checksums(group, path);
  const comm::Communicator& comm = optimizer.communicator();
  if (records.empty()) {
    if (comm.rank() == 0) {
      VT_LOG(warning) << path << " has no content hashes (written before they were added): only HDF5's Fletcher-32 "
                      << "checks it";
    }
    return;
  }
  for (size_t i = static_cast<size_t>(comm.rank()); i < records.size(); i += static_cast<size_t>(comm.size())) {
    const SpanChecksum& record = records[i];
    verify_span(record, read_span(group, record, path), kFields[record.field],
                tensor_at(optimizer.layout(), static_cast<int64_t>(record.offset)).first, path);
  }
}

// This rank's spans and the step count, after checking the file's tensors against the optimizer's.
void read_spans(const std::string& path, optim::ZeroOptimizer& optimizer) {
  Handle file = open_file(path, H5F_ACC_RDONLY);
  Handle group(H5Gopen2(file.get(), "optimizer", H5P_DEFAULT), H5Gclose);
  VT_CHECK(group.valid(), path, ": no 'optimizer' group");
  std::string stored;
  VT_CHECK(io::hdf5::read_string_attribute(group.get(), "tensors", stored), path, ": optimizer has no 'tensors' attribute");
  const auto saved = nlohmann::json::parse(stored);
  const auto& slots = optimizer.layout().slots();
  for (size_t i = 0; i < std::max(saved.size(), slots.size()); ++i) {
    VT_CHECK(i < saved.size(), path, ": trainable tensor '", slots[i].name, "' is not in the checkpoint");
    VT_CHECK(i < slots.size(), path, ": the checkpoint has trainable tensor '", saved[i]["name"].get<std::string>(),
             "' that this model does not train");
    VT_CHECK(saved[i]["name"] == slots[i].name && saved[i]["shape"].get<std::vector<int64_t>>() == slots[i].shape, path,
             ": trainable tensor ", i, " is '", saved[i]["name"].get<std::string>(), "' ", saved[i]["shape"].dump(),
             " in the checkpoint but '", slots[i].name, "' here (another model or LoRA setting?)");
  }
  std::vector<int64_t> step;
  VT_CHECK(io::hdf5::read_int_attribute(group.get(), "step", step) && step.size() == 1, path, ": optimizer has no 'step'");
  for (int f = 0; f < 3; ++f) {
    Handle dataset(H5Dopen2(group.get(), kFields[f], H5P_DEFAULT), H5Dclose);
    VT_CHECK(dataset.valid(), path, ": no optimizer/", kFields[f]);
    for (auto& span : optimizer.state_spans()) {
      at::Tensor& values = f == 0 ? span.master : f == 1 ? span.exp_avg : span.exp_avg_sq;
      transfer(dataset.get(), span.canonical_offset, values, false, path + ": optimizer/" + kFields[f]);
      check_finite(values, span.canonical_offset, optimizer.layout(), path + ": optimizer/" + kFields[f]);
    }
  }
  optimizer.set_step_count(step[0]);
  verify_share_of_checksums(group.get(), optimizer, path);
}

}  // namespace

void write_optimizer_state(const std::string& path, optim::ZeroOptimizer& optimizer) {
  comm::Communicator& comm = optimizer.communicator();
  const comm::World& world = comm.world();
  const int64_t numel = optimizer.layout().canonical_numel();
  if (world.rank == 0) {
    Handle file = open_file(path, H5F_ACC_RDWR);
    Handle group(H5Gcreate2(file.get(), "optimizer", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    VT_CHECK(group.valid(), path, ": cannot create group 'optimizer' (already there?)");
    io::hdf5::write_string_attribute(group.get(), "tensors", describe_tensors(optimizer.layout()));
    io::hdf5::write_int_attribute(group.get(), "step", {optimizer.step_count()});
    io::hdf5::write_int_attribute(group.get(), "skipped_steps", {optimizer.skipped_steps()});
    const hsize_t size = static_cast<hsize_t>(numel), chunk = std::min<hsize_t>(kChunk, size);
    Handle space(H5Screate_simple(1, &size, nullptr), H5Sclose);
    Handle properties(H5Pcreate(H5P_DATASET_CREATE), H5Pclose);
    H5Pset_chunk(properties.get(), 1, &chunk);
    H5Pset_fletcher32(properties.get());
    for (const char* field : kFields) {
      Handle dataset(H5Dcreate2(group.get(), field, H5T_IEEE_F32LE, space.get(), H5P_DEFAULT, properties.get(), H5P_DEFAULT),
                     H5Dclose);
      VT_CHECK(dataset.valid(), path, ": cannot create optimizer/", field);
    }
    VT_CHECK(file.close(), path, ": closing after creating the optimizer datasets failed");
  }
  comm.barrier("checkpoint: optimizer datasets created");
  // Serial HDF5: one writer at a time. With stage 0 every rank holds everything; rank 0 writes it.
  for (int writer = 0; writer < world.size; ++writer) {
    if (writer == world.rank && (writer == 0 || !optimizer.state_replicated())) {
      fault::point("checkpoint-write", world.rank);
      Handle file = open_file(path, H5F_ACC_RDWR);
      Handle group(H5Gopen2(file.get(), "optimizer", H5P_DEFAULT), H5Gclose);
      std::vector<SpanChecksum> checksums;
      for (int f = 0; f < 3; ++f) {
        Handle dataset(H5Dopen2(group.get(), kFields[f], H5P_DEFAULT), H5Dclose);
        for (const auto& span : optimizer.state_spans()) {
          const at::Tensor& values = f == 0 ? span.master : f == 1 ? span.exp_avg : span.exp_avg_sq;
          const at::Tensor written =
              transfer(dataset.get(), span.canonical_offset, values, true, path + ": optimizer/" + kFields[f]);
          add_checksums_by_tensor(f, span.canonical_offset, written, optimizer.layout(), checksums);
        }
      }
      write_span_checksums(group.get(), world.rank, checksums, path);
      VT_CHECK(group.close(), path, ": closing the optimizer group failed");
      VT_CHECK(file.close(), path, ": closing after writing ", world.describe(world.rank), "'s state failed");
    }
    comm.barrier("checkpoint: " + world.describe(writer) + " wrote its optimizer state");
  }
}

void read_optimizer_state(const std::string& path, optim::ZeroOptimizer& optimizer) {
  comm::Communicator& comm = optimizer.communicator();
  // Reading may fail on some ranks only (a damaged chunk holds only some ranks' spans): agree first, so that no
  // rank enters the collective publish below while another has given up.
  std::string failure;
  try {
    read_spans(path, optimizer);
  } catch (const std::exception& error) {
    failure = error.what();
  }
  const int failed_rank = comm.first_failed_rank(!failure.empty(), "checkpoint read: agreeing on " + path);
  if (failed_rank >= 0) {
    throw UnreadableCheckpoint(failure.empty() ? "checkpoint '" + path + "' could not be read on " +
                                                     comm.world().describe(failed_rank)
                                               : failure);
  }
  optimizer.publish_master_weights();
  comm.barrier("checkpoint read: weights published");
}

std::vector<std::string> load_trained_weights(const std::string& path, torch::nn::Module& module) {
  Handle file = open_file(path, H5F_ACC_RDONLY);
  Handle group(H5Gopen2(file.get(), "optimizer", H5P_DEFAULT), H5Gclose);
  VT_CHECK(group.valid(), path, ": no 'optimizer' group (not a vesseltune training checkpoint)");
  std::string stored;
  VT_CHECK(io::hdf5::read_string_attribute(group.get(), "tensors", stored), path, ": optimizer has no 'tensors' attribute");
  Handle master(H5Dopen2(group.get(), "master", H5P_DEFAULT), H5Dclose);
  VT_CHECK(master.valid(), path, ": no optimizer/master");
  const nlohmann::json tensors = nlohmann::json::parse(stored);
  auto parameters = module.named_parameters(true);
  std::vector<std::string> loaded;
  torch::NoGradGuard no_grad;
  for (const auto& tensor : tensors) {
    const std::string name = tensor.at("name");
    const auto shape = tensor.at("shape").get<std::vector<int64_t>>();
    at::Tensor* parameter = parameters.find(name);
    VT_CHECK(parameter != nullptr, path, ": trained tensor '", name,
             "' is not a parameter of this model (a checkpoint of another model preset or LoRA setting?)");
    VT_CHECK(parameter->sizes().vec() == shape, path, ": trained tensor '", name, "' is ", at::IntArrayRef(shape),
             " in the checkpoint but ", parameter->sizes(), " in this model (another model preset or LoRA setting?)");
    at::Tensor values = at::empty(shape, at::kFloat);
    transfer(master.get(), tensor.at("offset").get<int64_t>(), values.view({-1}), false, path + ": optimizer/master");
    const int64_t non_finite = at::isfinite(values).logical_not().sum().item<int64_t>();
    VT_CHECK(non_finite == 0, path, ": optimizer/master: trained tensor '", name, "' holds ", non_finite,
             " non-finite value(s): the checkpoint is damaged");
    parameter->copy_(values);
    loaded.push_back(name);
  }
  // The other direction too: a trainable parameter the checkpoint lacks would keep its base (or random) weights.
  const std::set<std::string> stored_names(loaded.begin(), loaded.end());
  for (const auto& item : parameters) {
    VT_CHECK(!item.value().requires_grad() || stored_names.count(item.key()), path, ": trainable parameter '",
             item.key(), "' of this model is not in the checkpoint (another model preset, LoRA or trainable setting?)");
  }
  for (const SpanChecksum& record : read_span_checksums(group.get(), path)) {
    if (record.field == 0) {
      verify_span(record, read_span(group.get(), record, path), "master", tensor_named_at(tensors, record.offset), path);
    }
  }
  return loaded;
}

}  // namespace vesseltune::checkpoint
