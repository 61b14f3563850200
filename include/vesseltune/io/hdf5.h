#pragma once
// Small RAII and attribute helpers over the HDF5 C API, shared by the data shards, checkpoints and metrics.

#include <hdf5.h>

#include <string>
#include <utility>
#include <vector>

namespace vesseltune::io::hdf5 {

// Owns one HDF5 identifier and closes it with the matching H5*close.
class Handle {
 public:
  using Closer = herr_t (*)(hid_t);
  Handle() = default;
  Handle(hid_t id, Closer closer) : id_(id), closer_(closer) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(std::exchange(other.id_, H5I_INVALID_HID)), closer_(other.closer_) {}
  Handle& operator=(Handle&& other) noexcept {
    if (this != &other) {
      reset();
      id_ = std::exchange(other.id_, H5I_INVALID_HID);
      closer_ = other.closer_;
    }
    return *this;
  }
  ~Handle() { reset(); }

  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }
  void reset() { close(); }
  // Closes now and says whether HDF5 managed (closing a file flushes it).
  bool close() {
    const herr_t status = id_ >= 0 && closer_ ? closer_(id_) : 0;
    id_ = H5I_INVALID_HID;
    return status >= 0;
  }

 private:
  hid_t id_ = H5I_INVALID_HID;
  Closer closer_ = nullptr;
};

// Turns off HDF5's own error printing: we report errors ourselves, naming the file.
void silence_errors();

void write_string_attribute(hid_t object, const char* name, const std::string& value);
void write_string_list_attribute(hid_t object, const char* name, const std::vector<std::string>& values);
void write_int_attribute(hid_t object, const char* name, const std::vector<int64_t>& values);

// The names of GROUP's members (links), in name order; errors name WHERE.
std::vector<std::string> member_names(hid_t group, const std::string& where);

// Readers return false when the attribute is missing or not of the expected kind.
bool read_string_attribute(hid_t object, const char* name, std::string& value);
bool read_string_list_attribute(hid_t object, const char* name, std::vector<std::string>& values);
bool read_int_attribute(hid_t object, const char* name, std::vector<int64_t>& values);

}  // namespace vesseltune::io::hdf5
