#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "common/logging.h"

namespace im::common {

// What every binary's main() does first: read the config file (keys overridable by IM_* env),
// turn it into the binary's options, and set up logging. A key of the file or an IM_<SECTION>_*
// variable that the binary does not read is an error (a typo must not silently leave a default in
// force). On failure it prints why on stderr, prefixed by `program`, and returns nullopt: main()
// then exits with status 2 (misconfiguration). `effective_config` gets the settings in force as
// JSON, secrets hidden (for the admin port's /config).
// `Options` has `log_level` and `log_format` and a static `FromConfig(Config&)`.
template <typename Options>
std::optional<Options> LoadOptionsOrExplain(const char* program, const std::string& config_path,
                                            std::string* effective_config) {
  absl::StatusOr<Config> config = Config::LoadFile(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, config.status().ToString().c_str());
    return std::nullopt;
  }
  absl::StatusOr<Options> options = Options::FromConfig(*config);
  // Unknown keys are reported beside a bad value: a misspelled key often explains it.
  const absl::Status unknown = config->CheckUnknownKeys();
  if (!options.ok() || !unknown.ok()) {
    for (const absl::Status& status : {options.status(), unknown}) {
      if (status.ok()) continue;
      std::fprintf(stderr, "%s: bad configuration: %s\n", program, status.ToString().c_str());
    }
    return std::nullopt;
  }
  *effective_config = config->EffectiveJson();
  if (absl::Status status = InitLogging(options->log_level, options->log_format); !status.ok()) {
    std::fprintf(stderr, "%s: %s\n", program, status.ToString().c_str());
    return std::nullopt;
  }
  RouteProtobufLogs();
  return std::move(*options);
}

}  // namespace im::common
