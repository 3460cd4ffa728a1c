#pragma once

#include <memory>
#include <string>

#include "store/member_list_cache.h"
#include "store/redis_async_client.h"
#include "store/redis_connection.h"

namespace im::store {

// MemberListCache on Redis: im:gmv:<group_id> holds the version token, hash im:gm:<group_id>
// the list (field ":v" the token it was saved under, which no uid can be; uid ->
// "<role>|<joined_seq>|<joined_ms>"). Both expire after `ttl_ms` unused, so groups nobody
// writes to leave Redis. Put and Invalidate are Lua scripts, atomic in Redis.
class RedisMemberListCache final : public MemberListCache {
 public:
  RedisMemberListCache(std::shared_ptr<RedisConnection> redis, int64_t ttl_ms);

  absl::StatusOr<std::string> Version(std::string_view group_id) override;
  absl::StatusOr<std::optional<std::vector<GroupMember>>> Get(std::string_view group_id,
                                                              std::string_view version) override;
  absl::Status Put(std::string_view group_id, std::string_view version,
                   const std::vector<GroupMember>& members) override;
  absl::Status Invalidate(std::string_view group_id) override;

 private:
  const int64_t ttl_ms_;
  std::shared_ptr<RedisConnection> redis_;
  // EVALSHA names of its scripts, loaded on redis_.
  const std::string put_sha_;
  const std::string invalidate_sha_;
};

// RedisMemberListCache's Version on a loop's asynchronous client: the same SET NX GET per group,
// a batch's groups in one write.
class RedisAsyncMemberListVersions final : public AsyncMemberListVersions {
 public:
  RedisAsyncMemberListVersions(RedisAsyncClient* redis, int64_t ttl_ms)
      : redis_(redis), ttl_ms_(ttl_ms) {}

  void VersionMany(const std::vector<std::string>& group_ids, Done done) override;

 private:
  RedisAsyncClient* redis_;
  const int64_t ttl_ms_;
};

}  // namespace im::store
