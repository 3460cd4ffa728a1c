#include "server/server_options.h"

namespace im::server {

absl::StatusOr<ServerOptions> ServerOptions::FromConfig(common::Config& config) {
  ServerOptions o;
  absl::StatusOr<gateway::GatewayOptions> gateway =
      gateway::GatewayOptions::FromConfig(config, common::Deployment::kEmbedded);
  absl::StatusOr<logic::LogicOptions> logic =
      logic::LogicOptions::FromConfig(config, common::Deployment::kEmbedded);
  o.data_dir = config.GetString("server.data_dir", o.data_dir);
  if (absl::Status status = config.status(); !status.ok()) return status;
  if (!gateway.ok()) return gateway.status();
  if (!logic.ok()) return logic.status();
  if (o.data_dir.empty()) return absl::InvalidArgumentError("server.data_dir must not be empty");
  o.gateway = std::move(*gateway);
  o.logic = std::move(*logic);
  o.log_level = o.gateway.log_level;
  o.log_format = o.gateway.log_format;
  return o;
}

}  // namespace im::server
