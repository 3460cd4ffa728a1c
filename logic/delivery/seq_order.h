#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <utility>

#include "absl/functional/any_invocable.h"
#include "common/clock.h"

namespace im::logic {

// Puts each conversation's messages back in seq order between their commit and their delivery
// (push or fan-out). A node takes a conversation's seqs on several executor threads and commits
// them on several writer threads, so a later seq can be stored first; delivered as stored, it
// would overtake the earlier one at every device.
//
// A seq is Expected when this node takes it and Completed once its write has ended, with what to
// do to deliver it (nothing when it was not stored). Each delivery runs once every lower seq this
// node expects in that conversation has completed, in seq order, under this object's lock (so
// they reach the next stage in that order): keep them short. Seqs other nodes take are never
// expected here and never waited for. A seq expected longer than `max_hold` and still not
// complete (a write that never reported: a bug) is given up on, so that a conversation is held
// up for at most that long, never forever.
//
// The claimers close the gap between taking a seq and Expecting it: the send loop expects in reply
// order on its one thread, and claims on the executor go one call at a time until their seqs are
// expected (ChatService::ClaimInSeqOrder). A send the loop hands to the executor to be numbered
// there (its conversation's counter is restored from MySQL first) holds its conversation
// (HoldConversation) until its seq is expected: the loop's later seqs of that conversation, taken
// meanwhile, wait for it instead of overtaking it. A holder must not wait for a delivery of that
// conversation (it would wait for itself until max_hold). Left open: a claim Redis refused on the
// loop and taken again on the executor (ClaimSend) is expected microseconds after Redis answers,
// unordered against the loop's claims in between.
class SeqOrder {
 public:
  using Deliver = absl::AnyInvocable<void() &&>;

  SeqOrder(int64_t max_hold_ms, common::MillisClock steady_ms)
      : max_hold_ms_(max_hold_ms), steady_ms_(std::move(steady_ms)) {}

  // Keeps a conversation's deliveries back while a seq of it is being taken out of order with its
  // other claims (see above); released when destroyed or Release()d, once that seq is expected
  // (or was not taken). A hold kept longer than `max_hold` is given up on, as a seq is.
  class Hold {
   public:
    Hold() = default;
    Hold(SeqOrder* order, std::string conv_id) : order_(order), conv_id_(std::move(conv_id)) {}
    Hold(Hold&& other) noexcept
        : order_(std::exchange(other.order_, nullptr)), conv_id_(std::move(other.conv_id_)) {}
    Hold& operator=(Hold&& other) noexcept {
      Release();
      order_ = std::exchange(other.order_, nullptr);
      conv_id_ = std::move(other.conv_id_);
      return *this;
    }
    ~Hold() { Release(); }
    void Release() {
      if (order_ != nullptr) std::exchange(order_, nullptr)->Unhold(conv_id_);
    }

   private:
    SeqOrder* order_ = nullptr;
    std::string conv_id_;
  };

  // Any thread.
  Hold HoldConversation(const std::string& conv_id);
  // Any thread.
  void Expect(const std::string& conv_id, uint64_t seq);
  // Any thread. `deliver` may be null (not stored). A seq that was never expected is delivered
  // at once.
  void Complete(const std::string& conv_id, uint64_t seq, Deliver deliver);

  // Seqs given up on since the start (see max_hold); conversations with seqs outstanding.
  uint64_t given_up() const;
  size_t conversations() const;

 private:
  struct Seq {
    int64_t expected_ms = 0;
    bool complete = false;
    Deliver deliver;  // set once complete, unless not stored
  };
  using Seqs = std::map<uint64_t, Seq>;
  struct Conversation {
    Seqs seqs;
    int holds = 0;
    int64_t held_since_ms = 0;  // when holds last went from 0 to 1
    bool idle() const { return seqs.empty() && holds == 0; }
  };
  void Unhold(const std::string& conv_id);
  // Runs the deliveries at the head of the conversation that may go; requires mutex_.
  void ReleaseHeadLocked(Conversation& conversation, int64_t now_ms);

  const int64_t max_hold_ms_;
  common::MillisClock steady_ms_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Conversation> outstanding_;  // guarded by mutex_
  uint64_t given_up_ = 0;                                      // guarded by mutex_
};

}  // namespace im::logic
