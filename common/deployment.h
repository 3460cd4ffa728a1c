#pragma once

namespace im::common {

// What a binary runs as, for the settings that only one of them has: a node of the cluster
// (im-gateway, im-logic: gRPC between them, Redis, MySQL and Kafka behind) or the embedded node
// (im-server: gateway and logic in one process on SQLite), which neither reads nor accepts the
// cluster's network and backend keys.
enum class Deployment { kCluster, kEmbedded };

}  // namespace im::common
