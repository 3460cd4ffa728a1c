#include "store/redis_send_ledger.h"

#include "store/redis_seq_allocator.h"

namespace im::store {
namespace {

// KEYS[1] dedup key, KEYS[2] seq counter; ARGV[1] pending marker, ARGV[2] TTL ms.
// Returns {0, value already there} | {1, seq} | {2} (claimed; the counter is missing).
constexpr char kClaimAndNumberScript[] = R"lua(
local existing = redis.call('SET', KEYS[1], ARGV[1], 'NX', 'GET', 'PX', ARGV[2])
if existing then return {0, existing} end
if redis.call('EXISTS', KEYS[2]) == 1 then return {1, redis.call('INCR', KEYS[2])} end
return {2})lua";

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
  const std::string ttl = std::to_string(ttl_ms);
  std::vector<RedisConnection::Args> commands;
  commands.reserve(claims.size());
  for (const Claim& claim : claims) {
    commands.push_back({"EVALSHA", claim_and_number_sha_, "2", dedup_prefix_ + claim.dedup_key,
                        RedisSeqAllocator::KeyOf(claim.conv_id), std::string(pending), ttl});
  }
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = redis_->Pipeline(commands);
  if (!replies.ok()) return std::vector<absl::StatusOr<Outcome>>(claims.size(), replies.status());
  std::vector<absl::StatusOr<Outcome>> outcomes;
  outcomes.reserve(claims.size());
  for (size_t i = 0; i < claims.size(); ++i) {
    outcomes.push_back(OutcomeOf((*replies)[i].get(), claims[i]));
  }
  return outcomes;
}

absl::StatusOr<SendLedger::Outcome> RedisSendLedger::OutcomeOf(const redisReply* r,
                                                               const Claim& claim) {
  const absl::Status unexpected = absl::InternalError("redis: unexpected reply to a send claim");
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
      r->element[0]->type != REDIS_REPLY_INTEGER) {
    return unexpected;
  }
  Outcome outcome;
  switch (r->element[0]->integer) {
    case 0:
      if (r->elements < 2 || r->element[1]->type != REDIS_REPLY_STRING) return unexpected;
      outcome.existing = std::string(RedisConnection::TextOf(r->element[1]));
      return outcome;
    case 1:
      if (r->elements < 2 || r->element[1]->type != REDIS_REPLY_INTEGER ||
          r->element[1]->integer <= 0) {
        return unexpected;
      }
      outcome.seq = static_cast<uint64_t>(r->element[1]->integer);
      return outcome;
    case 2: {
      absl::StatusOr<uint64_t> seq = seqs_->Next(claim.conv_id);
      if (!seq.ok()) {
        // Best effort; the claim expires anyway.
        redis_->Command({"DEL", dedup_prefix_ + claim.dedup_key}).status().IgnoreError();
        return seq.status();
      }
      outcome.seq = *seq;
      return outcome;
    }
    default:
      return unexpected;
  }
}

}  // namespace im::store
