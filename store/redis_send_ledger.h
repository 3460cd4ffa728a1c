#pragma once

#include <memory>
#include <string>
#include <vector>

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
  // What the script answered for `claim`; a missing counter is restored here.
  absl::StatusOr<Outcome> OutcomeOf(const redisReply* reply, const Claim& claim);

  std::shared_ptr<RedisConnection> redis_;
  // EVALSHA names of its scripts, loaded on redis_.
  const std::string claim_and_number_sha_;
  const std::string dedup_prefix_;
  SeqAllocator* seqs_;
};

}  // namespace im::store
