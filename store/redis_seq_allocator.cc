#include "store/redis_seq_allocator.h"

#include "common/status_macros.h"
#include "fmt/format.h"

namespace im::store {
namespace {

// KEYS[1] counter. INCR only an existing counter; nil means "restore first".
constexpr char kIncrementExistingScript[] = R"lua(
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCR', KEYS[1]) end
return false)lua";

// KEYS[1] counter; ARGV[1] restored value. The first restorer wins; everyone then increments.
constexpr char kRestoreAndIncrementScript[] = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'NX')
return redis.call('INCR', KEYS[1]))lua";

absl::StatusOr<uint64_t> SeqOf(const RedisConnection::Reply& reply) {
  if (reply->type != REDIS_REPLY_INTEGER || reply->integer <= 0) {
    return absl::InternalError("redis: unexpected reply to a seq increment");
  }
  return static_cast<uint64_t>(reply->integer);
}

}  // namespace

RedisSeqAllocator::RedisSeqAllocator(std::shared_ptr<RedisConnection> redis, SeqFloor floor,
                                     uint64_t restore_gap)
    : redis_(std::move(redis)),
      increment_existing_sha_(redis_->LoadScript(kIncrementExistingScript)),
      restore_and_increment_sha_(redis_->LoadScript(kRestoreAndIncrementScript)),
      floor_(std::move(floor)),
      restore_gap_(restore_gap) {}

std::string RedisSeqAllocator::KeyOf(std::string_view conv_id) {
  return fmt::format("im:seq:{}", conv_id);
}

absl::Status RedisSeqAllocator::Forget(std::string_view conv_id) {
  return redis_->Command({"DEL", KeyOf(conv_id)}).status();
}

absl::StatusOr<uint64_t> RedisSeqAllocator::Next(std::string_view conv_id) {
  const std::string key = KeyOf(conv_id);
  IM_ASSIGN_OR_RETURN(RedisConnection::Reply reply,
                      redis_->Command({"EVALSHA", increment_existing_sha_, "1", key}));
  if (reply->type == REDIS_REPLY_INTEGER) return SeqOf(reply);

  IM_ASSIGN_OR_RETURN(const uint64_t floor, floor_(conv_id));
  const uint64_t restored = floor == 0 ? 0 : floor + restore_gap_;
  IM_ASSIGN_OR_RETURN(reply, redis_->Command({"EVALSHA", restore_and_increment_sha_, "1", key,
                                              std::to_string(restored)}));
  return SeqOf(reply);
}

}  // namespace im::store
