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
  RedisConnection::Args command = {"EVALSHA", claim_and_number_sha_,
                                   std::to_string(claims.size() * 2)};
  command.reserve(command.size() + claims.size() * 2 + 2);
  for (const Claim& claim : claims) {
    command.push_back(dedup_prefix_ + claim.dedup_key);
    command.push_back(RedisSeqAllocator::KeyOf(claim.conv_id));
  }
  command.emplace_back(pending);
  command.push_back(std::to_string(ttl_ms));
  absl::StatusOr<RedisConnection::Reply> reply = redis_->Command(command);
  if (!reply.ok()) return std::vector<absl::StatusOr<Outcome>>(claims.size(), reply.status());
  const redisReply* r = reply->get();
  if (r->type != REDIS_REPLY_ARRAY || r->elements != claims.size()) {
    return std::vector<absl::StatusOr<Outcome>>(
        claims.size(), absl::InternalError("redis: unexpected reply to a batch of send claims"));
  }
  std::vector<absl::StatusOr<Outcome>> outcomes;
  outcomes.reserve(claims.size());
  for (size_t i = 0; i < claims.size(); ++i) {
    outcomes.push_back(OutcomeOf(r->element[i], claims[i]));
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
