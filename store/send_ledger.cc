#include "store/send_ledger.h"

#include "common/status_macros.h"

namespace im::store {

std::vector<absl::StatusOr<SendLedger::Outcome>> ComposedSendLedger::ClaimAndNumberMany(
    const std::vector<Claim>& claims, std::string_view pending, int64_t ttl_ms) {
  std::vector<absl::StatusOr<Outcome>> outcomes;
  outcomes.reserve(claims.size());
  for (const Claim& claim : claims) outcomes.push_back(ClaimAndNumberOne(claim, pending, ttl_ms));
  return outcomes;
}

absl::StatusOr<SendLedger::Outcome> ComposedSendLedger::ClaimAndNumberOne(const Claim& claim,
                                                                          std::string_view pending,
                                                                          int64_t ttl_ms) {
  Outcome outcome;
  IM_ASSIGN_OR_RETURN(outcome.existing, dedup_->PutIfAbsent(claim.dedup_key, pending, ttl_ms));
  if (outcome.existing) return outcome;
  absl::StatusOr<uint64_t> seq = seqs_->Next(claim.conv_id);
  if (!seq.ok()) {
    dedup_->Delete(claim.dedup_key).IgnoreError();  // best effort; the claim expires anyway
    return seq.status();
  }
  outcome.seq = *seq;
  return outcome;
}

}  // namespace im::store
