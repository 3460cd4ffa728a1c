#include "store/send_ledger.h"

#include "common/status_macros.h"

namespace im::store {

absl::StatusOr<SendLedger::Outcome> ComposedSendLedger::ClaimAndNumber(std::string_view dedup_key,
                                                                       std::string_view pending,
                                                                       int64_t ttl_ms,
                                                                       std::string_view conv_id) {
  Outcome outcome;
  IM_ASSIGN_OR_RETURN(outcome.existing, dedup_->PutIfAbsent(dedup_key, pending, ttl_ms));
  if (outcome.existing) return outcome;
  absl::StatusOr<uint64_t> seq = seqs_->Next(conv_id);
  if (!seq.ok()) {
    dedup_->Delete(dedup_key).IgnoreError();  // best effort; the claim expires anyway
    return seq.status();
  }
  outcome.seq = *seq;
  return outcome;
}

}  // namespace im::store
