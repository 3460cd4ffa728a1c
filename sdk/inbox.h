#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "sdk/conversation_stream.h"
#include "sdk/types.h"

namespace im::sdk {

// The receive side of all conversations: one ConversationStream each, the decision when to
// sync which range, and the cursors to ack. Pure (the caller passes the time and does the I/O).
// Loop thread only.
//
// A conversation whose starting cursor is not known yet (first login of a device without saved
// state) holds what arrives until Bind() tells where it starts, so that a push racing the login
// sync cannot make a device replay a conversation's whole history.
class Inbox {
 public:
  struct SyncRequest {
    std::string conv_id;
    uint64_t after_seq = 0;
  };
  struct Delivery {
    std::string conv_id;
    std::vector<Message> messages;
  };
  struct SyncPage {
    std::vector<Message> messages;
    std::vector<std::pair<uint64_t, uint64_t>> holes;
    bool has_more = false;
    uint64_t max_seq = 0;
  };

  explicit Inbox(int64_t gap_wait_ms) : gap_wait_ms_(gap_wait_ms) {}

  // Cursors saved from an earlier run: these conversations start where they stopped.
  void Restore(const std::map<std::string, uint64_t>& cursors);
  // Messages from a push or from this device's own confirmed send.
  std::optional<Delivery> Receive(const std::string& conv_id, std::vector<Message> messages,
                                  int64_t now_ms);
  // The server's view after login: per conversation its delivered cursor and max seq.
  // Conversations without a known cursor start at the server's delivered cursor; every
  // conversation that moved past the local cursor is scheduled for a sync. After the first
  // Bind, conversations first seen later start at 0 (they are new).
  std::vector<Delivery> Bind(const std::vector<Conversation>& server_view, int64_t now_ms);
  bool bound() const { return bound_; }

  // Syncs to start now; each is marked in progress until OnSynced/OnSyncFailed.
  std::vector<SyncRequest> TakeDueSyncs(int64_t now_ms);
  std::optional<Delivery> OnSynced(const std::string& conv_id, SyncPage page, int64_t now_ms);
  // `retry`: false when the conversation is closed to this user (NOT_MEMBER): stop syncing it.
  // `retry_in_ms`: when to try again (an overloaded cluster's hint, jittered); 0: the inbox's own
  // pause (four gap waits).
  void OnSyncFailed(const std::string& conv_id, bool retry, int64_t now_ms,
                    int64_t retry_in_ms = 0);
  // The connection is gone: syncs in progress are forgotten (Bind after the next login resumes).
  void AbortSyncs();

  // Cursors that moved since the last call (to ack and to save).
  std::map<std::string, uint64_t> TakeMovedCursors();
  std::map<std::string, uint64_t> Cursors() const;
  uint64_t delivered(const std::string& conv_id) const;

 private:
  struct Conversation {
    std::optional<ConversationStream> stream;  // empty while the starting cursor is unknown
    std::vector<Message> unbound;              // held until the cursor is known
    uint64_t target_seq = 0;                   // the highest seq the server is known to have
    bool syncing = false;
    bool closed = false;       // NOT_MEMBER: no more syncs
    int64_t next_sync_ms = 0;  // not before this
    int64_t gap_since_ms = 0;  // 0: no gap
    uint64_t acked = 0;
  };

  std::optional<Delivery> Deliver(const std::string& conv_id, Conversation& conversation,
                                  std::vector<Message> ready, int64_t now_ms);
  void Start(Conversation& conversation, uint64_t cursor);
  bool NeedsSync(const Conversation& conversation) const;

  int64_t gap_wait_ms_;
  bool bound_ = false;
  std::map<std::string, Conversation> conversations_;
};

}  // namespace im::sdk
