#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "nlohmann/json.hpp"

namespace im::logic {

// A JSON request body of the admin API, read as its OpenAPI document (docs/openapi/admin-api.yaml)
// describes it: an object holding only the fields named, each of its type and within its range.
// Reading goes on after a mistake, returning empty values; status() tells the first mistake, so
// a handler reads every field and then checks once.
class JsonBody {
 public:
  // `text` must be a JSON object whose fields are all in `fields`; an empty text reads as {} when
  // the body is optional.
  JsonBody(std::string_view text, bool optional, std::set<std::string_view> fields);

  std::optional<std::string> String(const char* name, size_t min_bytes, size_t max_bytes);
  // String that must be a uid (IsValidUid).
  std::optional<std::string> Uid(const char* name);
  std::optional<std::string> GroupId(const char* name);
  std::optional<int64_t> Integer(const char* name, int64_t min, int64_t max);
  // An array of uids: between min_items and max_items of them.
  std::optional<std::vector<std::string>> Uids(const char* name, size_t min_items,
                                               size_t max_items);
  // A field that must be there (after reading it).
  template <typename T>
  T Required(const char* name, std::optional<T> value) {
    if (!value && ok()) Fail(std::string(name) + " is required");
    return value ? std::move(*value) : T{};
  }
  void Fail(std::string reason);

  bool ok() const { return status_.ok(); }
  const absl::Status& status() const { return status_; }

 private:
  // The field `name`, null when absent (or after a mistake).
  const nlohmann::json* Field(const char* name);

  nlohmann::json json_;
  absl::Status status_;
};

}  // namespace im::logic
