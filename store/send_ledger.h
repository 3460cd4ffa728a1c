#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "store/seq_allocator.h"
#include "store/ttl_map.h"

namespace im::store {

// The first two steps of storing a send (DESIGN.md section 5), taken together: claim the send's
// dedup key (set it to a pending marker unless it has a live value) and, only when the claim was
// taken, number the message in its conversation. Thread-safe; may block.
class SendLedger {
 public:
  struct Outcome {
    std::optional<uint64_t> seq;          // the claim was taken: the message's seq
    std::optional<std::string> existing;  // the claim was not taken: the value already there
  };

  struct Claim {
    std::string dedup_key;
    std::string conv_id;
  };

  virtual ~SendLedger() = default;

  // Every claim of a batch (one round trip on Redis), each with its own outcome, in order. On an
  // error that claim is not held: one taken whose seq could not be had is released.
  virtual std::vector<absl::StatusOr<Outcome>> ClaimAndNumberMany(const std::vector<Claim>& claims,
                                                                  std::string_view pending,
                                                                  int64_t ttl_ms) = 0;

  absl::StatusOr<Outcome> ClaimAndNumber(std::string_view dedup_key, std::string_view pending,
                                         int64_t ttl_ms, std::string_view conv_id) {
    return std::move(
        ClaimAndNumberMany({Claim{std::string(dedup_key), std::string(conv_id)}}, pending, ttl_ms)
            .front());
  }
};

// The same step without blocking, for code on an event loop: called on the loop whose Redis
// client it was made with, and `done` runs there. A claim taken whose conversation counter is
// missing comes back with neither a seq nor an existing value: the caller numbers it off the
// loop (SeqAllocator::Next restores the counter from what is persisted).
class AsyncSendLedger {
 public:
  using Outcomes = std::vector<absl::StatusOr<SendLedger::Outcome>>;
  using Done = absl::AnyInvocable<void(Outcomes) &&>;

  virtual ~AsyncSendLedger() = default;
  virtual void ClaimAndNumberMany(const std::vector<SendLedger::Claim>& claims,
                                  std::string_view pending, int64_t ttl_ms, Done done) = 0;
};

// The two steps one after the other on a TtlMap and a SeqAllocator (two round trips when they
// are remote); for in-process backends. Both must outlive it.
class ComposedSendLedger final : public SendLedger {
 public:
  ComposedSendLedger(TtlMap* dedup, SeqAllocator* seqs) : dedup_(dedup), seqs_(seqs) {}

  std::vector<absl::StatusOr<Outcome>> ClaimAndNumberMany(const std::vector<Claim>& claims,
                                                          std::string_view pending,
                                                          int64_t ttl_ms) override;

 private:
  absl::StatusOr<Outcome> ClaimAndNumberOne(const Claim& claim, std::string_view pending,
                                            int64_t ttl_ms);

  TtlMap* dedup_;
  SeqAllocator* seqs_;
};

}  // namespace im::store
