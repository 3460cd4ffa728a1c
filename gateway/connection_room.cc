#include "gateway/connection_room.h"

#include "common/logging.h"
#include "common/open_file_limit.h"

namespace im::gateway {
namespace {

// Descriptors the gateway needs besides its clients: listeners, gRPC channels and their event
// engine, each loop's epoll and wake-ups, the admin server, logs.
constexpr uint64_t kFilesKeptForTheProcess = 128;

}  // namespace

std::optional<uint64_t> RoomForConnections(const GatewayOptions& options) {
  absl::StatusOr<common::OpenFileLimit> files = common::RaiseOpenFileLimit();
  if (!files.ok()) {
    spdlog::critical("open files: {}", files.status().ToString());
    return std::nullopt;
  }
  const uint64_t room =
      files->soft > kFilesKeptForTheProcess ? files->soft - kFilesKeptForTheProcess : 0;
  if (room < options.min_connections) {
    spdlog::critical(
        "open files: the limit is {} (hard limit {}), room for about {} client connections, "
        "below gateway.min_connections {}: raise the hard limit (docker run --ulimit "
        "nofile=N:N, systemd LimitNOFILE=N, ulimit -Hn N as root, or the container runtime's "
        "default) or lower gateway.min_connections",
        files->soft, files->hard, room, options.min_connections);
    return std::nullopt;
  }
  if (files->soft != files->soft_before) {
    spdlog::info(
        "open files: soft limit raised from {} to {} (the hard limit): room for about "
        "{} client connections",
        files->soft_before, files->soft, room);
  } else {
    spdlog::info("open files: limit {}: room for about {} client connections", files->soft, room);
  }
  return room;
}

}  // namespace im::gateway
