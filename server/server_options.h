#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "common/config.h"
#include "gateway/gateway_options.h"
#include "logic/logic_options.h"

namespace im::server {

// Everything im-server (the embedded node) is told at start-up: the gateway's keys (gateway.*)
// and logic's (logic.*, group.*, fanout.*) as the cluster's binaries read them, without the keys
// that only a cluster has, and where its data lives. One file; defaults serve a local run.
struct ServerOptions {
  gateway::GatewayOptions gateway;
  logic::LogicOptions logic;
  // server.data_dir: the SQLite database (im.db and its WAL) and the lock that keeps a second
  // process off it; created if missing. `im-server --data DIR` overrides it.
  std::string data_dir = "var/im-server";
  std::string log_level = "info";
  std::string log_format = "text";

  std::string database_path() const { return data_dir + "/im.db"; }

  static absl::StatusOr<ServerOptions> FromConfig(common::Config& config);
};

}  // namespace im::server
