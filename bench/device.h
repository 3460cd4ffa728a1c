#pragma once

#include <netinet/in.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "bench/change_picker.h"
#include "bench/client_connection.h"
#include "bench/seq_tracker.h"
#include "common/send_window.h"

namespace im::bench {

inline constexpr uint32_t kNoConversation = UINT32_MAX;

// A conversation of the run: a pair's single chat or a group. The single-chat id is known up front;
// a group's ids are set by its owner's loop during setup, and read by other loops only after the
// worker started the send phase (its release/acquire store orders them).
struct Conversation {
  std::string conv_id;
  std::string group_id;
  std::vector<uint32_t> members;  // device indices; members[0] owns a group
  uint32_t senders = 0;           // members[0..senders) send
  std::atomic<bool> ready{false};
};

// One simulated user device: a connection, what it sends and what it holds. Owned by the worker,
// touched only by the loop it is assigned to until the loops were joined.
struct Device {
  enum class State { kIdle, kConnecting, kLoggingIn, kOnline, kDown };

  uint32_t index = 0;      // in the worker's device list
  uint32_t loop_slot = 0;  // in its loop's device list
  std::string uid;
  std::string token;
  std::string to_uid;  // single chat: the peer
  uint32_t conv = kNoConversation;
  uint32_t gateway = 0;  // index into the gateway list, moves on when a gateway refuses
  const sockaddr_in* source = nullptr;
  std::unique_ptr<ClientConnection> conn;
  std::unique_ptr<SeqTracker> tracker;

  State state = State::kIdle;
  bool ever_online = false;
  bool sender = false;
  bool syncing = false;
  bool reconnected = false;  // dropped at least once since its first login
  uint64_t attempt_ns = 0;   // this connect attempt started
  uint64_t last_ping_ns = 0;
  uint64_t heartbeat_ns = 10'000'000'000;
  uint64_t down_since_ns = 0;  // 0: not waiting to resume
  uint32_t backoff_ms = 0;
  // A send refused for overload: this device sends nothing before then (the server's retry hint
  // plus a random part as long again), as the SDK's outbox waits; 0: not held.
  uint64_t hold_until_ns = 0;
  // A sync refused for overload is sent again then (the hint plus a random part as long again),
  // as the SDK's inbox waits; 0: none waiting.
  uint64_t sync_retry_ns = 0;
  // --sdk-devices: when to sync if the gap seen then is still open; 0: no gap being waited on.
  uint64_t gap_sync_ns = 0;
  // A sync completed after the final sync was sent, leaving no gap: the device holds every seq
  // the cluster has of its conversation.
  bool converged = false;
  // --sdk-devices: the seq each message of others (its id, see backlog) came under: the same
  // message under a second seq was stored twice (a resend not recognized as one).
  std::unordered_map<uint64_t, uint64_t> seq_of_message;

  // Message ids scheduled for this device and not sent yet (open loop: they wait here while the
  // window is full or the device is offline, and their latency keeps counting). Bit 63: a resend.
  std::vector<uint64_t> backlog;
  size_t backlog_head = 0;
  // How many sends may be unanswered: --window, halved by overload refusals and widened again by
  // acks, as the SDK does.
  common::SendWindow window{1};
  // Sends not answered yet (at most the window, so a vector).
  struct InFlightSend {
    uint64_t frame_id;
    uint64_t message;  // the message's id (see backlog)
    uint64_t sent_ns;  // when it was written
  };
  std::vector<InFlightSend> in_flight;
  uint64_t next_frame_id = 1;
  uint64_t messages_sent = 0;      // first sends, not resends: --typing-every counts them
  bool watched_presence = false;   // --watch-presence: this session sent its watch
  uint64_t messages_received = 0;  // from others, pushed or synced: --read-every counts them

  // Recalls and edits of its acknowledged messages (--recall-share, --edit-share): which to make,
  // those not answered yet (they share the window with the sends), and those to send again, with
  // the same client_msg_id, as the SDK does: cut off by a drop, or refused for overload.
  ChangePicker change_picker;
  struct Change {
    im::v1::MessageType type;  // RECALL or EDIT
    uint64_t message;          // the changed message's id (see backlog)
    uint64_t ref_seq;          // and its seq
    uint64_t first_sent_ns;    // the change's latency counts from its first write
  };
  struct InFlightChange {
    uint64_t frame_id;
    Change change;
  };
  std::vector<InFlightChange> changes_in_flight;
  std::vector<Change> changes_due;

  // --resume: the token of the last session whose catch-up completed (what the next connection
  // resumes with, as the SDK keeps the token of the last session it reconciled), the token this
  // session leaves once its catch-up completes, the ResumeReq in flight (its frame id), and
  // whether the pages so far listed the conversation beyond what the device holds.
  std::string resume_token;
  std::string next_resume_token;
  uint64_t resume_call = 0;
  bool resume_found_newer = false;

  // Group setup (the owner only): the next member to add, and the id of the call in flight.
  uint32_t setup_next = 0;
  uint64_t setup_call = 0;

  size_t backlog_size() const { return backlog.size() - backlog_head; }
  size_t requests_in_flight() const { return in_flight.size() + changes_in_flight.size(); }
};

}  // namespace im::bench
