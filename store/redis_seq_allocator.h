#pragma once

#include <memory>
#include <string>

#include "store/redis_connection.h"
#include "store/seq_allocator.h"

namespace im::store {

// SeqAllocator on Redis: INCR of im:seq:<conv_id>, only while the key exists (a Lua script), so a
// counter lost with Redis's data is never silently restarted at 1; it is restored with SET NX
// from the floor plus the gap, then incremented. Concurrent restorers agree through SET NX.
class RedisSeqAllocator final : public SeqAllocator {
 public:
  RedisSeqAllocator(std::shared_ptr<RedisConnection> redis, SeqFloor floor,
                    uint64_t restore_gap = kDefaultSeqRestoreGap);

  absl::StatusOr<uint64_t> Next(std::string_view conv_id) override;
  absl::Status Forget(std::string_view conv_id) override;

  static std::string KeyOf(std::string_view conv_id);

 private:
  std::shared_ptr<RedisConnection> redis_;
  // EVALSHA names of its scripts, loaded on redis_.
  const std::string increment_existing_sha_;
  const std::string restore_and_increment_sha_;
  SeqFloor floor_;
  const uint64_t restore_gap_;
};

}  // namespace im::store
