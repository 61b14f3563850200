#include "vesseltune/io/safetensors_header.h"

#include <algorithm>
#include <limits>
#include <nlohmann/json.hpp>

#include "vesseltune/core/check.h"

namespace vesseltune::io {

namespace {
constexpr uint64_t kMaxHeaderBytes = 100ull << 20;
}

size_t dtype_size(const std::string& dtype) {
  static const std::map<std::string, size_t> sizes{{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8},
                                                   {"I32", 4}, {"I16", 2}, {"I8", 1},  {"U8", 1},   {"BOOL", 1}};
  const auto found = sizes.find(dtype);
  return found == sizes.end() ? 0 : found->second;
}

Header parse_safetensors_header(const uint8_t* bytes, size_t size, uint64_t file_size, const std::string& source) {
  VT_CHECK(size >= 8 && file_size >= 8, source, ": not a safetensors file (shorter than its 8-byte header length)");
  uint64_t header_length = 0;
  for (int i = 7; i >= 0; --i) header_length = (header_length << 8) | bytes[i];
  VT_CHECK(header_length <= kMaxHeaderBytes, source, ": header length ", header_length, " bytes exceeds the 100 MiB limit");
  VT_CHECK(header_length <= file_size - 8, source, ": header length ", header_length, " is larger than the file (",
           file_size, " bytes): truncated or not a safetensors file");
  VT_CHECK(8 + header_length <= size, source, ": header not fully available");

  nlohmann::json json;
  try {
    json = nlohmann::json::parse(bytes + 8, bytes + 8 + header_length);
  } catch (const nlohmann::json::exception& error) {
    VT_FAIL(source, ": header is not valid JSON: ", error.what());
  }
  VT_CHECK(json.is_object(), source, ": header must be a JSON object");

  Header header;
  header.data_offset = 8 + header_length;
  const uint64_t data_size = file_size - header.data_offset;
  for (const auto& [name, value] : json.items()) {
    if (name == "__metadata__") {
      VT_CHECK(value.is_object(), source, ": __metadata__ must be an object of strings");
      for (const auto& [key, text] : value.items()) {
        VT_CHECK(text.is_string(), source, ": __metadata__.", key, " must be a string");
        header.metadata[key] = text.get<std::string>();
      }
      continue;
    }
    const std::string where = source + ": tensor '" + name + "'";
    VT_CHECK(value.is_object() && value.contains("dtype") && value.contains("shape") && value.contains("data_offsets"),
             where, " needs dtype, shape and data_offsets");
    HeaderEntry entry;
    entry.name = name;
    VT_CHECK(value["dtype"].is_string(), where, ": dtype must be a string");
    entry.dtype = value["dtype"].get<std::string>();
    const size_t element = dtype_size(entry.dtype);
    VT_CHECK(element > 0, where, ": unsupported dtype '", entry.dtype, "'");
    VT_CHECK(value["shape"].is_array(), where, ": shape must be an array");
    uint64_t numel = 1;
    for (const auto& d : value["shape"]) {
      VT_CHECK(d.is_number_unsigned() || (d.is_number_integer() && d.get<int64_t>() >= 0), where,
               ": shape entries must be non-negative integers");
      const uint64_t extent = d.get<uint64_t>();
      VT_CHECK(extent == 0 || numel <= std::numeric_limits<uint64_t>::max() / extent / element, where,
               ": shape overflows");
      numel *= extent;
      entry.shape.push_back(static_cast<int64_t>(extent));
    }
    const auto& offsets = value["data_offsets"];
    VT_CHECK(offsets.is_array() && offsets.size() == 2 && offsets[0].is_number_unsigned() &&
                 offsets[1].is_number_unsigned(),
             where, ": data_offsets must be [begin, end]");
    entry.begin = offsets[0].get<uint64_t>();
    entry.end = offsets[1].get<uint64_t>();
    VT_CHECK(entry.begin <= entry.end && entry.end <= data_size, where, ": data_offsets [", entry.begin, ", ",
             entry.end, "] lie outside the data buffer of ", data_size, " bytes (truncated file?)");
    VT_CHECK(entry.end - entry.begin == numel * element, where, ": ", entry.end - entry.begin,
             " bytes stored but shape and dtype need ", numel * element);
    header.entries.push_back(std::move(entry));
  }
  std::sort(header.entries.begin(), header.entries.end(),
            [](const HeaderEntry& a, const HeaderEntry& b) { return a.begin < b.begin || (a.begin == b.begin && a.end < b.end); });
  // Sorted by start, a tensor overlaps an earlier one exactly when it starts before the furthest end so far.
  uint64_t furthest_end = 0;
  const HeaderEntry* furthest = nullptr;
  for (const auto& entry : header.entries) {
    if (entry.begin == entry.end) continue;  // empty tensors occupy no bytes
    VT_CHECK(furthest == nullptr || entry.begin >= furthest_end, source, ": tensors '", furthest ? furthest->name : "",
             "' and '", entry.name, "' overlap");
    if (entry.end > furthest_end) {
      furthest_end = entry.end;
      furthest = &entry;
    }
  }
  return header;
}

std::string make_safetensors_header(const std::vector<HeaderEntry>& entries,
                                    const std::map<std::string, std::string>& metadata) {
  nlohmann::ordered_json json;
  if (!metadata.empty()) json["__metadata__"] = metadata;
  for (const auto& entry : entries) {
    json[entry.name] = {{"dtype", entry.dtype}, {"shape", entry.shape}, {"data_offsets", {entry.begin, entry.end}}};
  }
  std::string text = json.dump();
  text.append((8 - text.size() % 8) % 8, ' ');  // data starts 8-byte aligned, as the reference writer does
  std::string prefix(8, '\0');
  uint64_t length = text.size();
  for (int i = 0; i < 8; ++i) prefix[i] = static_cast<char>((length >> (8 * i)) & 0xFF);
  return prefix + text;
}

}  // namespace vesseltune::io
