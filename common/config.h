#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <map>
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
// Every key asked for is remembered, so that once a binary has read its options,
// CheckUnknownKeys() can tell a misspelled key from a setting and EffectiveJson() can show what
// the binary runs with. Not thread-safe; read it at start-up.
class Config {
 public:
  // The variables a Config reads: a snapshot of the process's environment, or a map in tests.
  using Environment = std::map<std::string, std::string>;

  // `path` empty: no file, only environment and defaults. A missing or invalid file is an error.
  static absl::StatusOr<Config> LoadFile(const std::string& path, Environment env = ProcessEnv());
  static absl::StatusOr<Config> FromYamlString(std::string_view yaml,
                                               Environment env = ProcessEnv());
  static Environment ProcessEnv();

  std::string GetString(std::string_view key, std::string_view default_value);
  // GetString for a credential: EffectiveJson() shows whether it is set, never its value.
  std::string GetSecret(std::string_view key, std::string_view default_value);
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

  // Once every key was asked for: OK, or InvalidArgument listing every key of the file that no
  // getter asked for and every variable named like one of this binary's keys (IM_<SECTION>_...,
  // SECTION the first part of a key it reads, e.g. IM_GATEWAY_ for gateway.listen) that matches
  // none, each with the nearest known key. Other IM_* variables (IM_TEST_*, IM_VAR_DIR, the local
  // scripts' IM_LOCAL_*) belong to tools, not to this binary, and are left alone.
  absl::Status CheckUnknownKeys() const;

  // Every key asked for, sorted, as a JSON object {"key": {"value": "...", "source": "default" |
  // "file" | "IM_..."}}; a secret's value is "(set)" or "(empty)".
  std::string EffectiveJson() const;

  static std::string EnvName(std::string_view key);

 private:
  enum class Source { kDefault, kFile, kEnvironment };
  struct Raw {
    std::string text;
    Source source;
  };
  struct Setting {
    std::string value;
    Source source = Source::kDefault;
    bool secret = false;
  };

  Config(YAML::Node root, Environment env) : root_(std::move(root)), env_(std::move(env)) {}
  // The raw text for `key`: environment first, then a YAML scalar; nullopt when absent.
  std::optional<Raw> Lookup(std::string_view key);
  std::optional<std::string> Env(std::string_view key) const;
  YAML::Node FindNode(std::string_view key) const;
  void AddError(std::string_view key, std::string_view value, std::string_view expected);
  // Records what `key` ended up as, for CheckUnknownKeys and EffectiveJson.
  void Remember(std::string_view key, std::string value, Source source);
  // The dotted paths of the file's values (maps walked into, anything else a leaf).
  std::vector<std::string> FileKeys() const;

  YAML::Node root_;
  Environment env_;
  std::vector<std::string> errors_;
  std::map<std::string, Setting, std::less<>> settings_;  // every key asked for
};

}  // namespace im::common
