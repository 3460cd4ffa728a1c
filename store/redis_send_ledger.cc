#include "store/redis_send_ledger.h"

#include "store/redis_seq_allocator.h"

namespace im::store {
namespace {

// A whole batch in one call (one script run instead of one per send). For each claim i,
// KEYS[2i-1] is its dedup key and KEYS[2i] its conversation's seq counter; ARGV[1] pending marker,
// ARGV[2] TTL ms. Returns one entry per claim, in order:
// {0, value already there} | {1, seq} | {2} (claimed; the counter is missing).
constexpr char kClaimAndNumberScript[] = R"lua(
local outcomes = {}
for i = 1, #KEYS, 2 do
  local existing = redis.call('SET', KEYS[i], ARGV[1], 'NX', 'GET', 'PX', ARGV[2])
  if existing then
    outcomes[#outcomes + 1] = {0, existing}
  elseif redis.call('EXISTS', KEYS[i + 1]) == 1 then
    outcomes[#outcomes + 1] = {1, redis.call('INCR', KEYS[i + 1])}
  else
    outcomes[#outcomes + 1] = {2}
  end
end
return outcomes)lua";

// The script's arguments for a batch.
std::vector<std::string> ClaimCommand(const std::string& sha, const std::string& dedup_prefix,
                                      const std::vector<SendLedger::Claim>& claims,
                                      std::string_view pending, int64_t ttl_ms) {
  std::vector<std::string> command = {"EVALSHA", sha, std::to_string(claims.size() * 2)};
  command.reserve(command.size() + claims.size() * 2 + 2);
  for (const SendLedger::Claim& claim : claims) {
    command.push_back(dedup_prefix + claim.dedup_key);
    command.push_back(RedisSeqAllocator::KeyOf(claim.conv_id));
  }
  command.emplace_back(pending);
  command.push_back(std::to_string(ttl_ms));
  return command;
}

// What the script answered for one claim; `counter_missing` when it was taken without a seq.
absl::StatusOr<SendLedger::Outcome> OutcomeOf(const redisReply* r, bool* counter_missing) {
  const absl::Status unexpected = absl::InternalError("redis: unexpected reply to a send claim");
  *counter_missing = false;
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    return unexpected;
  }
  SendLedger::Outcome outcome;
  switch (r->element[0]->integer) {
    case 0:
      if (r->elements < 2 || r->element[1]->type != REDIS_REPLY_STRING) return unexpected;
      outcome.existing = std::string(TextOfReply(r->element[1]));
      return outcome;
    case 1:
      if (r->elements < 2 || r->element[1]->type != REDIS_REPLY_INTEGER ||
          r->element[1]->integer <= 0) {
        return unexpected;
      }
      outcome.seq = static_cast<uint64_t>(r->element[1]->integer);
      return outcome;
    case 2:
      *counter_missing = true;
      return outcome;
    default:
      return unexpected;
  }
}

// The outcome of each claim from the script's reply; `on_counter_missing(i)` numbers claim i.
template <typename OnCounterMissing>
std::vector<absl::StatusOr<SendLedger::Outcome>> OutcomesOf(
    const absl::StatusOr<const redisReply*>& reply, size_t claims,
    OnCounterMissing on_counter_missing) {
  if (!reply.ok()) return std::vector<absl::StatusOr<SendLedger::Outcome>>(claims, reply.status());
  const redisReply* r = *reply;
  if (r->type != REDIS_REPLY_ARRAY || r->elements != claims) {
    return std::vector<absl::StatusOr<SendLedger::Outcome>>(
        claims, absl::InternalError("redis: unexpected reply to a batch of send claims"));
  }
  std::vector<absl::StatusOr<SendLedger::Outcome>> outcomes;
  outcomes.reserve(claims);
  for (size_t i = 0; i < claims; ++i) {
    bool counter_missing = false;
    outcomes.push_back(OutcomeOf(r->element[i], &counter_missing));
    if (counter_missing) on_counter_missing(i, outcomes.back());
  }
  return outcomes;
}

}  // namespace

RedisSendLedger::RedisSendLedger(std::shared_ptr<RedisConnection> redis, std::string dedup_prefix,
                                 SeqAllocator* seqs)
    : redis_(std::move(redis)),
      claim_and_number_sha_(redis_->LoadScript(kClaimAndNumberScript)),
      dedup_prefix_(std::move(dedup_prefix)),
      seqs_(seqs) {}

std::vector<absl::StatusOr<SendLedger::Outcome>> RedisSendLedger::ClaimAndNumberMany(
    const std::vector<Claim>& claims, std::string_view pending, int64_t ttl_ms) {
  if (claims.empty()) return {};
  absl::StatusOr<RedisConnection::Reply> reply =
      redis_->Command(ClaimCommand(claim_and_number_sha_, dedup_prefix_, claims, pending, ttl_ms));
  absl::StatusOr<const redisReply*> raw =
      reply.ok() ? absl::StatusOr<const redisReply*>(reply->get()) : reply.status();
  return OutcomesOf(raw, claims.size(), [&](size_t i, absl::StatusOr<Outcome>& outcome) {
    absl::StatusOr<uint64_t> seq = seqs_->Next(claims[i].conv_id);
    if (!seq.ok()) {
      // Best effort; the claim expires anyway.
      redis_->Command({"DEL", dedup_prefix_ + claims[i].dedup_key}).status().IgnoreError();
      outcome = seq.status();
      return;
    }
    outcome->seq = *seq;
  });
}

RedisAsyncSendLedger::RedisAsyncSendLedger(RedisAsyncClient* redis, std::string dedup_prefix)
    : redis_(redis),
      claim_and_number_sha_(redis_->LoadScript(kClaimAndNumberScript)),
      dedup_prefix_(std::move(dedup_prefix)) {}

void RedisAsyncSendLedger::ClaimAndNumberMany(const std::vector<SendLedger::Claim>& claims,
                                              std::string_view pending, int64_t ttl_ms, Done done) {
  if (claims.empty()) return std::move(done)({});
  redis_->Command(ClaimCommand(claim_and_number_sha_, dedup_prefix_, claims, pending, ttl_ms),
                  [count = claims.size(),
                   done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                    // A missing counter stays as it is: taken, without a seq.
                    std::move(done)(OutcomesOf(
                        reply, count, [](size_t, absl::StatusOr<SendLedger::Outcome>&) {}));
                  });
}

}  // namespace im::store
