#pragma once

#include <cstdint>
#include <optional>

#include "gateway/gateway_options.h"

namespace im::gateway {

// Raises the open-file limit and says how many clients it leaves room for; nullopt (with the
// reason logged) when that is below gateway.min_connections.
std::optional<uint64_t> RoomForConnections(const GatewayOptions& options);

}  // namespace im::gateway
