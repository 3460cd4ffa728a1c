#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "yaml-cpp/yaml.h"

namespace im::common {

// Configuration of one binary: a YAML file, every key overridable by an environment variable,
// and defaults given at each lookup so that an empty file serves a local run.
// A dotted key "gateway.max_frame_bytes" is read from the YAML path gateway -> max_frame_bytes and
// overridden by IM_GATEWAY_MAX_FRAME_BYTES (upper case, dots become underscores).
// Getters never fail: a value that does not parse or is out of range is recorded, the default is
// returned, and status() reports every such error at once so start-up can fail with one message.
// Not thread-safe; read it at start-up.
class Config {
 public:
  using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;

  // `path` empty: no file, only environment and defaults. A missing or invalid file is an error.
  static absl::StatusOr<Config> LoadFile(const std::string& path, EnvLookup env = ProcessEnv());
  static absl::StatusOr<Config> FromYamlString(std::string_view yaml, EnvLookup env = ProcessEnv());
  static EnvLookup ProcessEnv();

  std::string GetString(std::string_view key, std::string_view default_value);
  int64_t GetInt(std::string_view key, int64_t default_value, int64_t min, int64_t max);
  // GetInt for the many settings that are 32-bit counts, sizes and durations.
  uint32_t GetU32(std::string_view key, uint32_t default_value, int64_t min,
                  int64_t max = std::numeric_limits<uint32_t>::max()) {
    return static_cast<uint32_t>(GetInt(key, default_value, min, max));
  }
  bool GetBool(std::string_view key, bool default_value);
  double GetDouble(std::string_view key, double default_value, double min, double max);
  // A YAML sequence, or a comma-separated string (in YAML or in the environment).
  std::vector<std::string> GetStringList(std::string_view key,
                                         const std::vector<std::string>& default_value);

  // OK, or InvalidArgument listing every bad key with its value and what was expected.
  absl::Status status() const;

  static std::string EnvName(std::string_view key);

 private:
  Config(YAML::Node root, EnvLookup env) : root_(std::move(root)), env_(std::move(env)) {}
  // The raw text for `key`: environment first, then a YAML scalar; nullopt when absent.
  std::optional<std::string> Lookup(std::string_view key);
  YAML::Node FindNode(std::string_view key) const;
  void AddError(std::string_view key, std::string_view value, std::string_view expected);

  YAML::Node root_;
  EnvLookup env_;
  std::vector<std::string> errors_;
};

}  // namespace im::common
