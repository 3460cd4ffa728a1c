#pragma once

#include <memory>
#include <string>
#include <vector>

#include "store/redis_async_client.h"
#include "store/redis_connection.h"
#include "store/send_ledger.h"

namespace im::store {

// SendLedger on Redis in one round trip and one script call per batch: a Lua script, for each
// claim, sets the dedup key (SET NX GET PX, the same key RedisTtlMap(prefix) uses) and INCRs the
// conversation's counter (the same key RedisSeqAllocator uses) only when the claim was taken and
// the counter exists. A missing counter (first use, or lost with Redis's data) is left to `seqs`,
// which restores it.
class RedisSendLedger final : public SendLedger {
 public:
  // `seqs` must outlive it.
  RedisSendLedger(std::shared_ptr<RedisConnection> redis, std::string dedup_prefix,
                  SeqAllocator* seqs);

  std::vector<absl::StatusOr<Outcome>> ClaimAndNumberMany(const std::vector<Claim>& claims,
                                                          std::string_view pending,
                                                          int64_t ttl_ms) override;

 private:
  std::shared_ptr<RedisConnection> redis_;
  // EVALSHA names of its scripts, loaded on redis_.
  const std::string claim_and_number_sha_;
  const std::string dedup_prefix_;
  SeqAllocator* seqs_;
};

// The same script on a logic event loop's RedisAsyncClient, without blocking; a missing counter
// is left to the caller (AsyncSendLedger). `redis` outlives it; used on its loop only.
class RedisAsyncSendLedger final : public AsyncSendLedger {
 public:
  RedisAsyncSendLedger(RedisAsyncClient* redis, std::string dedup_prefix);

  void ClaimAndNumberMany(const std::vector<SendLedger::Claim>& claims, std::string_view pending,
                          int64_t ttl_ms, Done done) override;

 private:
  RedisAsyncClient* redis_;
  const std::string claim_and_number_sha_;
  const std::string dedup_prefix_;
};

}  // namespace im::store
