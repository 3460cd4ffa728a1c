// imctl: small operator commands. For now `imctl token`, which mints a login token signed with
// the cluster's token secret, as an app's backend would (DESIGN.md section 4).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "CLI/CLI.hpp"
#include "common/clock.h"
#include "common/token.h"

int main(int argc, char** argv) {
  CLI::App app{"imctl: operator commands for the IM cluster"};
  app.require_subcommand(1);

  CLI::App* token = app.add_subcommand("token", "print a login token for a user");
  std::string uid;
  std::string device;
  // The local cluster's secret (deploy/local/logic.yaml) unless told otherwise.
  std::string secret = "dev-secret-change-me";
  if (const char* from_env = std::getenv("IM_LOGIC_TOKEN_SECRET")) secret = from_env;
  int64_t ttl_sec = 24 * 3600;
  token->add_option("--uid", uid, "user id the token names")->required();
  token->add_option("--device", device, "bind the token to this device (default: any device)");
  token->add_option("--secret", secret,
                    "HMAC secret shared with the cluster (default: $IM_LOGIC_TOKEN_SECRET, else "
                    "the local cluster's)");
  token->add_option("--ttl", ttl_sec, "seconds until the token expires")
      ->check(CLI::Range(int64_t{1}, int64_t{10} * 365 * 24 * 3600));
  CLI11_PARSE(app, argc, argv);

  if (uid.empty() || secret.empty()) {
    std::fprintf(stderr, "imctl token: --uid and a secret are required\n");
    return 2;
  }
  const int64_t now = im::common::UnixMillis() / 1000;
  im::common::TokenClaims claims;
  claims.uid = uid;
  claims.iat_unix_sec = now;
  claims.exp_unix_sec = now + ttl_sec;
  claims.device = device;
  std::printf("%s\n", im::common::SignToken(claims, secret).c_str());
  return 0;
}
