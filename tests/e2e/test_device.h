#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "im/v1/client.pb.h"
#include "tests/support/wire_client.h"

namespace im::e2e {

using Millis = std::chrono::milliseconds;

// The single-chat conversation id of two users: s:<min uid>:<max uid>.
std::string SingleConvId(const std::string& a, const std::string& b);
// The conversation id of a group: g:<group id>.
std::string GroupConvId(const std::string& group_id);

// One message as a device received it by push, tagged with the connection it came on.
struct PushedMessage {
  int connection = 0;  // TestDevice::connection_number() at arrival
  im::v1::Message message;
};

// A device of a user, speaking the wire protocol through WireClient, keeping what it was pushed
// and, per conversation, what it holds (pushes, its own acknowledged sends and syncs, deduplicated
// by seq as the SDK does). Blocking; used from one thread at a time. Pushes are read whenever the
// device waits for a response or is polled.
class TestDevice {
 public:
  TestDevice(std::string uid, std::string device, std::string token);
  ~TestDevice();
  TestDevice(const TestDevice&) = delete;
  TestDevice& operator=(const TestDevice&) = delete;

  const std::string& uid() const { return uid_; }
  const std::string& device() const { return device_; }
  void set_token(std::string token) { token_ = std::move(token); }

  // Connects to 127.0.0.1:port and sends LoginReq. Returns the LoginResp (whatever its status),
  // nullopt when there was no answer. A device already connected is disconnected first.
  std::optional<im::v1::LoginResp> Connect(uint16_t port, Millis timeout = Millis(10'000));
  // Connect() that must succeed with status OK (EXPECT otherwise).
  bool Login(uint16_t port, Millis timeout = Millis(10'000));
  // Tries each port in turn until a login succeeds, retrying for at most `timeout`.
  bool LoginAny(const std::vector<uint16_t>& ports, Millis timeout);
  // Closes the socket (the server sees the peer leave).
  void Disconnect();
  bool connected() const { return client_ != nullptr && !client_->closed(); }
  uint16_t port() const { return port_; }
  // Counts connections made by this device, 1 for the first.
  int connection_number() const { return connection_number_; }
  im::testing::WireClient* wire() { return client_.get(); }

  // ---- requests; nullopt: no response within `timeout` or the connection closed ----
  // Any request frame; pushes that arrive meanwhile are absorbed.
  std::optional<im::v1::Frame> Call(im::v1::Frame request, Millis timeout = Millis(10'000));
  std::optional<im::v1::SendResp> Send(const im::v1::SendReq& req, Millis timeout = Millis(10'000));
  std::optional<im::v1::SendResp> SendTo(const std::string& to_uid,
                                         const std::string& client_msg_id, const std::string& body,
                                         Millis timeout = Millis(10'000));
  std::optional<im::v1::SendResp> SendToConv(const std::string& conv_id,
                                             const std::string& client_msg_id,
                                             const std::string& body,
                                             Millis timeout = Millis(10'000));
  // Sends all of `reqs` with at most `window` unanswered at a time; responses in the order of
  // `reqs`.
  std::vector<std::optional<im::v1::SendResp>> SendPipelined(
      const std::vector<im::v1::SendReq>& reqs, size_t window, Millis timeout = Millis(30'000));
  // AckReq has no response.
  bool Ack(const std::string& conv_id, uint64_t seq);
  std::optional<im::v1::ReadResp> Read(const std::string& conv_id, uint64_t read_seq,
                                       Millis timeout = Millis(10'000));
  std::optional<im::v1::SyncResp> SyncPage(const std::string& conv_id, uint64_t after_seq,
                                           uint32_t limit, Millis timeout = Millis(10'000));
  std::optional<im::v1::ConversationsResp> ConversationsPage(const std::string& page_token,
                                                             uint32_t limit,
                                                             Millis timeout = Millis(10'000));

  // ---- groups; an Error frame answering the request becomes the response's status ----
  std::optional<im::v1::GroupCreateResp> GroupCreate(const std::string& name,
                                                     const std::vector<std::string>& members,
                                                     Millis timeout = Millis(10'000));
  // Empty `uids`: this user joins; else it adds them.
  std::optional<im::v1::GroupJoinResp> GroupJoin(const std::string& group_id,
                                                 const std::vector<std::string>& uids = {},
                                                 Millis timeout = Millis(10'000));
  // Empty `uid`: this user leaves; else it removes uid.
  std::optional<im::v1::GroupLeaveResp> GroupLeave(const std::string& group_id,
                                                   const std::string& uid = "",
                                                   Millis timeout = Millis(10'000));
  std::optional<im::v1::GroupMembersResp> GroupMembersPage(const std::string& group_id,
                                                           const std::string& page_token,
                                                           uint32_t limit,
                                                           Millis timeout = Millis(10'000));
  std::optional<im::v1::GroupSetRoleResp> GroupSetRole(const std::string& group_id,
                                                       const std::string& uid,
                                                       im::v1::GroupRole role,
                                                       Millis timeout = Millis(10'000));
  // Every page of a group's members, following next_page_token.
  struct GroupMembersResult {
    bool ok = false;
    std::string error;               // why not ok
    im::v1::Code code = im::v1::OK;  // the status of the page that failed
    std::vector<im::v1::GroupMember> members;
    int pages = 0;
  };
  GroupMembersResult ListGroupMembers(const std::string& group_id, uint32_t limit);

  // Every page of a conversation after `after_seq`, following has_more.
  struct SyncResult {
    bool ok = false;
    std::string error;               // why not ok
    im::v1::Code code = im::v1::OK;  // the status of the page that failed
    std::vector<im::v1::Message> messages;
    std::vector<im::v1::SeqRange> holes;
    uint64_t max_seq = 0;
    int pages = 0;
  };
  SyncResult SyncAll(const std::string& conv_id, uint64_t after_seq, uint32_t limit);
  // What the SDK does after (re)connecting: sync after the highest seq held contiguously.
  SyncResult CatchUp(const std::string& conv_id, uint32_t limit);

  // Every page of the user's conversations, following next_page_token.
  struct ConversationsResult {
    bool ok = false;
    std::string error;               // why not ok
    im::v1::Code code = im::v1::OK;  // the status of the page that failed
    std::vector<im::v1::Conversation> conversations;
    int pages = 0;
  };
  ConversationsResult ListConversations(uint32_t limit);
  // The entry of `conv_id` in ListConversations, nullopt when absent or on error.
  std::optional<im::v1::Conversation> FindConversation(const std::string& conv_id,
                                                       uint32_t limit = 50);

  // ---- pushes ----
  // Reads what arrives within `timeout` (at least one read attempt).
  void Poll(Millis timeout);
  // Polls until `done()` holds or `timeout` passes; returns done().
  bool WaitUntil(const std::function<bool()>& done, Millis timeout);
  // Pushes are counted without system notices (IsSystemNotice): tests count the messages they
  // sent. Notices() has those, and Held() holds both, as an app does.
  // Waits until at least `count` messages of `conv_id` were pushed to this device.
  bool WaitForPushed(const std::string& conv_id, size_t count, Millis timeout);
  // Waits until the server closes the connection.
  bool WaitClosed(Millis timeout);

  // Messages pushed to this device, in arrival order (all connections).
  std::vector<PushedMessage> Pushed(const std::string& conv_id) const;
  size_t PushedCount(const std::string& conv_id) const;
  // The system notices of `conv_id` pushed to this device, in arrival order.
  std::vector<im::v1::Message> Notices(const std::string& conv_id) const;
  // Distinct seqs of `conv_id` pushed to this device (a seq pushed twice counts once).
  size_t PushedSeqCount(const std::string& conv_id) const;
  const std::vector<im::v1::ReadPush>& read_pushes() const { return read_pushes_; }
  const std::vector<im::v1::Kick>& kicks() const { return kicks_; }
  // The states of PresencePush frames, in arrival order.
  const std::vector<im::v1::Presence>& presences() const { return presences_; }
  const std::vector<im::v1::Error>& errors() const { return errors_; }
  int go_aways() const { return go_aways_; }
  // reconnect_after_ms of the last GoAway (0 before any).
  uint32_t last_go_away_ms() const { return last_go_away_ms_; }
  // Frames with a non-zero id that no call was waiting for (for example a response that came
  // after its call timed out).
  int unexpected_frames() const { return unexpected_frames_; }

  // What the device holds of `conv_id`, in seq order, one message per seq.
  std::vector<im::v1::Message> Held(const std::string& conv_id) const;
  // The highest seq up to which every seq is held (holes reported by Sync count as held).
  uint64_t ContiguousSeq(const std::string& conv_id) const;
  // Two different messages seen with the same (conv, seq): must never happen.
  const std::vector<std::string>& conflicts() const { return conflicts_; }

 private:
  struct ConvState {
    std::vector<PushedMessage> pushed;  // system notices apart
    std::set<uint64_t> pushed_seqs;
    std::vector<im::v1::Message> notices;  // the system notices pushed, in arrival order
    std::map<uint64_t, im::v1::Message> held;
    std::vector<im::v1::SeqRange> holes;
  };

  // Call() for a request whose response is `Resp`, found in the frame by `has`/`get`; an Error
  // frame answering the request becomes the status of the response.
  template <typename Resp>
  std::optional<Resp> CallFor(im::v1::Frame request, bool (im::v1::Frame::*has)() const,
                              const Resp& (im::v1::Frame::*get)() const, Millis timeout);
  void Absorb(im::v1::Frame&& frame);
  void DrainQueued();
  void Hold(const im::v1::Message& message);
  void HoldOwn(const im::v1::SendReq& req, const im::v1::SendResp& resp);

  std::string uid_;
  std::string device_;
  std::string token_;
  std::unique_ptr<im::testing::WireClient> client_;
  uint16_t port_ = 0;
  int connection_number_ = 0;
  uint64_t next_pipelined_id_ = uint64_t{1} << 40;
  std::map<std::string, ConvState> convs_;
  std::vector<im::v1::ReadPush> read_pushes_;
  std::vector<im::v1::Kick> kicks_;
  std::vector<im::v1::Presence> presences_;
  std::vector<im::v1::Error> errors_;
  int go_aways_ = 0;
  uint32_t last_go_away_ms_ = 0;
  int unexpected_frames_ = 0;
  std::vector<std::string> conflicts_;
};

// ---- checks ----
// A group's system notice: a SYSTEM message from @system (group created, member joined, ...;
// docs/admin-api.md). The checks below that compare a conversation with the messages a test sent
// set notices aside: tests/e2e/admin_api_test.cc checks them.
bool IsSystemNotice(const im::v1::Message& message);
size_t NoticeCount(const std::vector<im::v1::Message>& messages);
// Seqs strictly increasing: each seq once, in order.
::testing::AssertionResult EachSeqOnceInOrder(const std::vector<im::v1::Message>& messages);
// Exactly these seqs, in this order, system notices set aside.
::testing::AssertionResult SeqsAre(const std::vector<im::v1::Message>& messages,
                                   const std::vector<uint64_t>& expected);
std::vector<uint64_t> SeqsOf(const std::vector<im::v1::Message>& messages);
std::vector<uint64_t> SeqsOf(const std::vector<PushedMessage>& pushed);
std::vector<im::v1::Message> MessagesOf(const std::vector<PushedMessage>& pushed);
// How the pushes of one conversation to a device compare with what it should have been pushed.
struct PushTally {
  size_t pushed = 0;      // messages pushed, on every connection
  size_t duplicates = 0;  // pushes of a seq that had been pushed before
  size_t overtaken = 0;   // pushes of a seq below one pushed before them (arrived out of order)
  std::vector<uint64_t> duplicated;  // the seqs pushed more than once (each seq once)
  std::vector<uint64_t> missing;     // expected, never pushed
  std::vector<uint64_t> unexpected;  // pushed, not expected (each seq once)
  bool exact() const { return duplicates == 0 && missing.empty() && unexpected.empty(); }
  std::string ToString() const;
};
PushTally TallyPushes(const std::vector<PushedMessage>& pushed, const std::set<uint64_t>& expected);

// "[1, 2, 5]" for failure messages.
std::string SeqList(const std::vector<uint64_t>& seqs);

}  // namespace im::e2e
