// libFuzzer target for the config loader: YAML and IM_* environment variables read as the three
// binaries read them at start-up (im-logic's and im-gateway's options for a cluster, im-server's
// for the embedded node), then the unknown-key check and the effective-config dump.
//
// Input layout: the YAML text, then optionally a NUL byte and environment lines "NAME=value".
// Loading may refuse the input with an error, never crash; an accepted config's EffectiveJson
// must be a JSON object.

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/config.h"
#include "gateway/gateway_options.h"
#include "logic/logic_options.h"
#include "nlohmann/json.hpp"
#include "server/server_options.h"

namespace {

void Check(bool ok, const char* what) {
  if (ok) return;
  std::fprintf(stderr, "config_fuzz: %s\n", what);
  std::abort();
}

im::common::Config::Environment ParseEnvironment(std::string_view text) {
  im::common::Config::Environment env;
  while (!text.empty()) {
    const size_t end = text.find('\n');
    const std::string_view line = text.substr(0, end);
    if (const size_t equals = line.find('='); equals != std::string_view::npos) {
      env[std::string(line.substr(0, equals))] = std::string(line.substr(equals + 1));
    }
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return env;
}

// Loads `yaml` with `env` and reads it with `read` (a FromConfig); then the checks every binary
// makes once its options are read.
template <typename Read>
void Load(std::string_view yaml, const im::common::Config::Environment& env, Read read) {
  absl::StatusOr<im::common::Config> config = im::common::Config::FromYamlString(yaml, env);
  if (!config.ok()) return;
  const bool accepted = read(*config);
  const absl::Status unknown = config->CheckUnknownKeys();
  if (!accepted || !unknown.ok()) return;
  const nlohmann::json effective =
      nlohmann::json::parse(config->EffectiveJson(), nullptr, /*allow_exceptions=*/false);
  Check(effective.is_object(), "EffectiveJson is not a JSON object");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view yaml = input.substr(0, nul);
  const im::common::Config::Environment env = nul == std::string_view::npos
                                                  ? im::common::Config::Environment{}
                                                  : ParseEnvironment(input.substr(nul + 1));
  Load(yaml, env,
       [](im::common::Config& config) { return im::logic::LogicOptions::FromConfig(config).ok(); });
  Load(yaml, env, [](im::common::Config& config) {
    return im::gateway::GatewayOptions::FromConfig(config).ok();
  });
  Load(yaml, env, [](im::common::Config& config) {
    return im::server::ServerOptions::FromConfig(config).ok();
  });
  return 0;
}
