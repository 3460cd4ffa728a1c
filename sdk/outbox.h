#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "sdk/pending_send.h"

namespace im::sdk {

// The sends the server has not confirmed, in the order the app made them, each either queued
// or in flight on the current connection. Pure bookkeeping (no I/O, no clock of its own): the
// client decides when to send, retry and give up. Used on the client's loop only.
class Outbox {
 public:
  // Returns false when the client_msg_id is already held.
  bool Add(PendingSend send);

  // Marks up to `limit` queued sends whose retry time has come as in flight and returns them,
  // oldest first.
  std::vector<PendingSend> TakeReady(int64_t now_ms, size_t limit);
  // Removes a send (its outcome is known). nullopt when it is not held.
  std::optional<PendingSend> Remove(const std::string& client_msg_id);
  // An in-flight send goes back to the queue, not to be sent before `not_before_ms`.
  void Requeue(const std::string& client_msg_id, int64_t not_before_ms);
  // The connection is gone: everything in flight is queued again (same client_msg_id, so a send
  // the server did store is answered with its original seq when retried).
  void RequeueAll();
  // Removes and returns queued (not in-flight) sends whose deadline has passed.
  std::vector<PendingSend> TakeExpired(int64_t now_ms);

  bool in_flight(const std::string& client_msg_id) const;
  size_t in_flight_count() const { return in_flight_; }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }

 private:
  struct Entry {
    PendingSend send;
    bool in_flight = false;
    int64_t not_before_ms = 0;
  };

  std::map<uint64_t, Entry> entries_;  // by arrival order
  std::unordered_map<std::string, uint64_t> order_of_;
  uint64_t next_order_ = 0;
  size_t in_flight_ = 0;
};

}  // namespace im::sdk
