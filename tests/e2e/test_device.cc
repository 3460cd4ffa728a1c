#include "tests/e2e/test_device.h"

#include <algorithm>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace im::e2e {
namespace {

// Walks a listing paged by next_page_token until a page has none: every item appended to `items`,
// each page checked (answered, OK, at most `limit` items, a token that moves on).
template <typename Response, typename Item, typename Fetch, typename Result>
void FollowPages(const char* what, uint32_t limit, int max_pages, Fetch fetch,
                 const google::protobuf::RepeatedPtrField<Item>& (Response::*items_of)() const,
                 std::vector<Item>* items, Result* result) {
  std::string token;
  for (int guard = 0; guard < max_pages; ++guard) {
    std::optional<Response> page = fetch(token);
    if (!page) {
      result->error = absl::StrCat("no ", what, " for page_token='", token, "'");
      return;
    }
    result->pages++;
    if (page->status().code() != im::v1::OK) {
      result->code = page->status().code();
      result->error = page->ShortDebugString();
      return;
    }
    const auto& page_items = ((*page).*items_of)();
    if (page_items.size() > static_cast<int>(limit)) {
      result->error = absl::StrCat("page of ", page_items.size(), " > limit ", limit);
      return;
    }
    items->insert(items->end(), page_items.begin(), page_items.end());
    if (page->next_page_token().empty()) {
      result->ok = true;
      return;
    }
    if (page->next_page_token() == token) {
      result->error = "next_page_token repeats: " + token;
      return;
    }
    token = page->next_page_token();
  }
  result->error = "too many pages";
}

}  // namespace

std::string SingleConvId(const std::string& a, const std::string& b) {
  return a < b ? absl::StrCat("s:", a, ":", b) : absl::StrCat("s:", b, ":", a);
}

std::string GroupConvId(const std::string& group_id) { return absl::StrCat("g:", group_id); }

TestDevice::TestDevice(std::string uid, std::string device, std::string token)
    : uid_(std::move(uid)), device_(std::move(device)), token_(std::move(token)) {}

TestDevice::~TestDevice() = default;

std::optional<im::v1::LoginResp> TestDevice::Connect(uint16_t port, Millis timeout) {
  Disconnect();
  absl::StatusOr<std::unique_ptr<im::testing::WireClient>> client =
      im::testing::WireClient::Connect("127.0.0.1", port);
  if (!client.ok()) return std::nullopt;
  client_ = std::move(*client);
  port_ = port;
  connection_number_++;
  std::optional<im::v1::Frame> frame = client_->Login(token_, device_, timeout);
  DrainQueued();
  if (!frame) return std::nullopt;
  if (!frame->has_login_resp()) {
    Absorb(std::move(*frame));
    return std::nullopt;
  }
  return frame->login_resp();
}

bool TestDevice::Login(uint16_t port, Millis timeout) {
  std::optional<im::v1::LoginResp> resp = Connect(port, timeout);
  EXPECT_TRUE(resp.has_value()) << uid_ << "/" << device_ << ": no LoginResp from port " << port;
  if (!resp) return false;
  EXPECT_EQ(resp->status().code(), im::v1::OK)
      << uid_ << "/" << device_ << ": " << resp->status().ShortDebugString();
  EXPECT_EQ(resp->uid(), uid_);
  return resp->status().code() == im::v1::OK;
}

bool TestDevice::LoginAny(const std::vector<uint16_t>& ports, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    for (uint16_t port : ports) {
      if (port == 0) continue;
      std::optional<im::v1::LoginResp> resp = Connect(port, Millis(5'000));
      if (resp && resp->status().code() == im::v1::OK) return true;
    }
    Disconnect();
    std::this_thread::sleep_for(Millis(100));
  }
  return false;
}

void TestDevice::Disconnect() {
  if (client_) DrainQueued();
  client_.reset();
}

std::optional<im::v1::Frame> TestDevice::Call(im::v1::Frame request, Millis timeout) {
  if (!client_) return std::nullopt;
  std::optional<im::v1::Frame> response = client_->Call(std::move(request), timeout);
  DrainQueued();
  return response;
}

std::optional<im::v1::SendResp> TestDevice::Send(const im::v1::SendReq& req, Millis timeout) {
  im::v1::Frame frame;
  *frame.mutable_send_req() = req;
  std::optional<im::v1::Frame> response = Call(std::move(frame), timeout);
  if (!response) return std::nullopt;
  im::v1::SendResp resp;
  if (response->has_send_resp()) {
    resp = response->send_resp();
    HoldOwn(req, resp);
  } else if (response->has_error()) {
    // The gateway answered for logic (TOO_MANY_IN_FLIGHT, UNEXPECTED_FRAME): a failed send.
    resp.mutable_status()->set_code(response->error().code());
    resp.mutable_status()->set_message("Error frame: " + response->error().message());
  } else {
    resp.mutable_status()->set_code(im::v1::UNKNOWN);
    resp.mutable_status()->set_message("unexpected response " + response->ShortDebugString());
  }
  return resp;
}

std::optional<im::v1::SendResp> TestDevice::SendTo(const std::string& to_uid,
                                                   const std::string& client_msg_id,
                                                   const std::string& body, Millis timeout) {
  im::v1::SendReq req;
  req.set_to_uid(to_uid);
  req.set_client_msg_id(client_msg_id);
  req.set_type(im::v1::TEXT);
  req.set_body(body);
  return Send(req, timeout);
}

std::optional<im::v1::SendResp> TestDevice::SendToConv(const std::string& conv_id,
                                                       const std::string& client_msg_id,
                                                       const std::string& body, Millis timeout) {
  im::v1::SendReq req;
  req.set_conv_id(conv_id);
  req.set_client_msg_id(client_msg_id);
  req.set_type(im::v1::TEXT);
  req.set_body(body);
  return Send(req, timeout);
}

std::vector<std::optional<im::v1::SendResp>> TestDevice::SendPipelined(
    const std::vector<im::v1::SendReq>& reqs, size_t window, Millis timeout) {
  std::vector<std::optional<im::v1::SendResp>> out(reqs.size());
  if (!client_) return out;
  std::map<uint64_t, size_t> outstanding;  // frame id -> index in reqs
  size_t next = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (next < reqs.size() || !outstanding.empty()) {
    while (next < reqs.size() && outstanding.size() < window) {
      im::v1::Frame frame;
      frame.set_id(next_pipelined_id_++);
      *frame.mutable_send_req() = reqs[next];
      if (!client_->SendFrame(frame)) return out;
      outstanding[frame.id()] = next++;
    }
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    std::optional<im::v1::Frame> response = client_->ReceiveMatching(
        [&outstanding](const im::v1::Frame& f) { return outstanding.count(f.id()) > 0; },
        std::max(left, Millis(1)));
    if (!response) break;  // timed out or closed: the rest stay nullopt
    const size_t index = outstanding[response->id()];
    outstanding.erase(response->id());
    im::v1::SendResp resp;
    if (response->has_send_resp()) {
      resp = response->send_resp();
      HoldOwn(reqs[index], resp);
    } else {
      resp.mutable_status()->set_code(response->has_error() ? response->error().code()
                                                            : im::v1::UNKNOWN);
      resp.mutable_status()->set_message(response->ShortDebugString());
    }
    out[index] = std::move(resp);
  }
  DrainQueued();
  return out;
}

bool TestDevice::Ack(const std::string& conv_id, uint64_t seq) {
  if (!client_) return false;
  im::v1::Frame frame;
  frame.set_id(next_pipelined_id_++);
  im::v1::AckReq::Cursor* cursor = frame.mutable_ack_req()->add_cursors();
  cursor->set_conv_id(conv_id);
  cursor->set_seq(seq);
  return client_->SendFrame(frame);
}

std::optional<im::v1::ReadResp> TestDevice::Read(const std::string& conv_id, uint64_t read_seq,
                                                 Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_read_req()->set_conv_id(conv_id);
  frame.mutable_read_req()->set_read_seq(read_seq);
  std::optional<im::v1::Frame> response = Call(std::move(frame), timeout);
  if (!response || !response->has_read_resp()) return std::nullopt;
  return response->read_resp();
}

std::optional<im::v1::SyncResp> TestDevice::SyncPage(const std::string& conv_id, uint64_t after_seq,
                                                     uint32_t limit, Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_sync_req()->set_conv_id(conv_id);
  frame.mutable_sync_req()->set_after_seq(after_seq);
  frame.mutable_sync_req()->set_limit(limit);
  std::optional<im::v1::Frame> response = Call(std::move(frame), timeout);
  if (!response || !response->has_sync_resp()) return std::nullopt;
  return response->sync_resp();
}

std::optional<im::v1::ConversationsResp> TestDevice::ConversationsPage(
    const std::string& page_token, uint32_t limit, Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_conversations_req()->set_limit(limit);
  frame.mutable_conversations_req()->set_page_token(page_token);
  std::optional<im::v1::Frame> response = Call(std::move(frame), timeout);
  if (!response || !response->has_conversations_resp()) return std::nullopt;
  return response->conversations_resp();
}

template <typename Resp>
std::optional<Resp> TestDevice::CallFor(im::v1::Frame request, bool (im::v1::Frame::*has)() const,
                                        const Resp& (im::v1::Frame::*get)() const, Millis timeout) {
  std::optional<im::v1::Frame> response = Call(std::move(request), timeout);
  if (!response) return std::nullopt;
  if (((*response).*has)()) return ((*response).*get)();
  Resp resp;
  if (response->has_error()) {
    resp.mutable_status()->set_code(response->error().code());
    resp.mutable_status()->set_message("Error frame: " + response->error().message());
  } else {
    resp.mutable_status()->set_code(im::v1::UNKNOWN);
    resp.mutable_status()->set_message("unexpected response " + response->ShortDebugString());
  }
  return resp;
}

std::optional<im::v1::GroupCreateResp> TestDevice::GroupCreate(
    const std::string& name, const std::vector<std::string>& members, Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_group_create_req()->set_name(name);
  for (const std::string& uid : members) frame.mutable_group_create_req()->add_members(uid);
  return CallFor(std::move(frame), &im::v1::Frame::has_group_create_resp,
                 &im::v1::Frame::group_create_resp, timeout);
}

std::optional<im::v1::GroupJoinResp> TestDevice::GroupJoin(const std::string& group_id,
                                                           const std::vector<std::string>& uids,
                                                           Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_group_join_req()->set_group_id(group_id);
  for (const std::string& uid : uids) frame.mutable_group_join_req()->add_uids(uid);
  return CallFor(std::move(frame), &im::v1::Frame::has_group_join_resp,
                 &im::v1::Frame::group_join_resp, timeout);
}

std::optional<im::v1::GroupLeaveResp> TestDevice::GroupLeave(const std::string& group_id,
                                                             const std::string& uid,
                                                             Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_group_leave_req()->set_group_id(group_id);
  frame.mutable_group_leave_req()->set_uid(uid);
  return CallFor(std::move(frame), &im::v1::Frame::has_group_leave_resp,
                 &im::v1::Frame::group_leave_resp, timeout);
}

std::optional<im::v1::GroupMembersResp> TestDevice::GroupMembersPage(const std::string& group_id,
                                                                     const std::string& page_token,
                                                                     uint32_t limit,
                                                                     Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_group_members_req()->set_group_id(group_id);
  frame.mutable_group_members_req()->set_page_token(page_token);
  frame.mutable_group_members_req()->set_limit(limit);
  return CallFor(std::move(frame), &im::v1::Frame::has_group_members_resp,
                 &im::v1::Frame::group_members_resp, timeout);
}

std::optional<im::v1::GroupSetRoleResp> TestDevice::GroupSetRole(const std::string& group_id,
                                                                 const std::string& uid,
                                                                 im::v1::GroupRole role,
                                                                 Millis timeout) {
  im::v1::Frame frame;
  frame.mutable_group_set_role_req()->set_group_id(group_id);
  frame.mutable_group_set_role_req()->set_uid(uid);
  frame.mutable_group_set_role_req()->set_role(role);
  return CallFor(std::move(frame), &im::v1::Frame::has_group_set_role_resp,
                 &im::v1::Frame::group_set_role_resp, timeout);
}

TestDevice::GroupMembersResult TestDevice::ListGroupMembers(const std::string& group_id,
                                                            uint32_t limit) {
  GroupMembersResult result;
  FollowPages(
      "GroupMembersResp", limit, 100'000,
      [&](const std::string& token) { return GroupMembersPage(group_id, token, limit); },
      &im::v1::GroupMembersResp::members, &result.members, &result);
  return result;
}

TestDevice::SyncResult TestDevice::SyncAll(const std::string& conv_id, uint64_t after_seq,
                                           uint32_t limit) {
  SyncResult result;
  uint64_t after = after_seq;
  ConvState& state = convs_[conv_id];
  for (int guard = 0; guard < 100'000; ++guard) {
    std::optional<im::v1::SyncResp> page = SyncPage(conv_id, after, limit);
    if (!page) {
      result.error = absl::StrCat("no SyncResp for after_seq=", after);
      return result;
    }
    result.pages++;
    if (page->status().code() != im::v1::OK) {
      result.code = page->status().code();
      result.error = absl::StrCat("SyncResp after_seq=", after, ": ", page->ShortDebugString());
      return result;
    }
    if (page->messages_size() > static_cast<int>(limit)) {
      result.error = absl::StrCat("page of ", page->messages_size(), " > limit ", limit);
      return result;
    }
    uint64_t next_after = after;
    for (const im::v1::Message& message : page->messages()) {
      if (message.conv_id() != conv_id || message.seq() <= after) {
        result.error = absl::StrCat("after_seq=", after, " returned ", message.ShortDebugString());
        return result;
      }
      result.messages.push_back(message);
      Hold(message);
      next_after = std::max(next_after, message.seq());
    }
    for (const im::v1::SeqRange& hole : page->holes()) {
      result.holes.push_back(hole);
      state.holes.push_back(hole);
      next_after = std::max(next_after, hole.last());
    }
    result.max_seq = page->max_seq();
    if (!page->has_more()) {
      result.ok = true;
      return result;
    }
    if (next_after == after) {
      result.error = absl::StrCat("has_more without progress at after_seq=", after);
      return result;
    }
    after = next_after;
  }
  result.error = "too many pages";
  return result;
}

TestDevice::SyncResult TestDevice::CatchUp(const std::string& conv_id, uint32_t limit) {
  return SyncAll(conv_id, ContiguousSeq(conv_id), limit);
}

TestDevice::ConversationsResult TestDevice::ListConversations(uint32_t limit) {
  ConversationsResult result;
  FollowPages(
      "ConversationsResp", limit, 10'000,
      [&](const std::string& token) { return ConversationsPage(token, limit); },
      &im::v1::ConversationsResp::conversations, &result.conversations, &result);
  return result;
}

std::optional<im::v1::Conversation> TestDevice::FindConversation(const std::string& conv_id,
                                                                 uint32_t limit) {
  ConversationsResult all = ListConversations(limit);
  if (!all.ok) return std::nullopt;
  for (const im::v1::Conversation& c : all.conversations) {
    if (c.conv_id() == conv_id) return c;
  }
  return std::nullopt;
}

void TestDevice::Poll(Millis timeout) {
  if (!client_) {
    std::this_thread::sleep_for(std::min(timeout, Millis(10)));
    return;
  }
  std::optional<im::v1::Frame> frame = client_->Receive(std::max(timeout, Millis(1)));
  if (frame) Absorb(std::move(*frame));
  DrainQueued();
}

bool TestDevice::WaitUntil(const std::function<bool()>& done, Millis timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    const auto left =
        std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    Poll(std::min(left, Millis(50)));
  }
  return true;
}

bool TestDevice::WaitForPushed(const std::string& conv_id, size_t count, Millis timeout) {
  return WaitUntil([&] { return PushedCount(conv_id) >= count; }, timeout);
}

bool TestDevice::WaitClosed(Millis timeout) {
  if (!client_) return true;
  const bool closed = client_->WaitClosed(timeout);
  DrainQueued();
  return closed;
}

std::vector<PushedMessage> TestDevice::Pushed(const std::string& conv_id) const {
  auto it = convs_.find(conv_id);
  return it == convs_.end() ? std::vector<PushedMessage>{} : it->second.pushed;
}

std::vector<im::v1::Message> TestDevice::Notices(const std::string& conv_id) const {
  auto it = convs_.find(conv_id);
  return it == convs_.end() ? std::vector<im::v1::Message>{} : it->second.notices;
}

size_t TestDevice::PushedCount(const std::string& conv_id) const {
  auto it = convs_.find(conv_id);
  return it == convs_.end() ? 0 : it->second.pushed.size();
}

size_t TestDevice::PushedSeqCount(const std::string& conv_id) const {
  auto it = convs_.find(conv_id);
  return it == convs_.end() ? 0 : it->second.pushed_seqs.size();
}

std::vector<im::v1::Message> TestDevice::Held(const std::string& conv_id) const {
  std::vector<im::v1::Message> out;
  auto it = convs_.find(conv_id);
  if (it == convs_.end()) return out;
  for (const auto& [seq, message] : it->second.held) out.push_back(message);
  return out;
}

uint64_t TestDevice::ContiguousSeq(const std::string& conv_id) const {
  auto it = convs_.find(conv_id);
  if (it == convs_.end()) return 0;
  const ConvState& state = it->second;
  uint64_t seq = 0;
  while (true) {
    if (state.held.count(seq + 1) > 0) {
      seq++;
      continue;
    }
    bool in_hole = false;
    for (const im::v1::SeqRange& hole : state.holes) {
      if (hole.first() <= seq + 1 && seq + 1 <= hole.last()) {
        seq = hole.last();
        in_hole = true;
        break;
      }
    }
    if (!in_hole) return seq;
  }
}

void TestDevice::Absorb(im::v1::Frame&& frame) {
  switch (frame.body_case()) {
    case im::v1::Frame::kMessagePush:
      for (const im::v1::Message& message : frame.message_push().messages()) {
        ConvState& state = convs_[message.conv_id()];
        if (IsSystemNotice(message)) {
          state.notices.push_back(message);
        } else {
          state.pushed.push_back({connection_number_, message});
          state.pushed_seqs.insert(message.seq());
        }
        Hold(message);
      }
      return;
    case im::v1::Frame::kReadPush:
      read_pushes_.push_back(frame.read_push());
      return;
    case im::v1::Frame::kKick:
      kicks_.push_back(frame.kick());
      return;
    case im::v1::Frame::kPresencePush:
      for (const im::v1::Presence& presence : frame.presence_push().presences()) {
        presences_.push_back(presence);
      }
      return;
    case im::v1::Frame::kGoAway:
      go_aways_++;
      last_go_away_ms_ = frame.go_away().reconnect_after_ms();
      return;
    case im::v1::Frame::kError:
      if (frame.id() == 0) {
        errors_.push_back(frame.error());
        return;
      }
      break;
    default:
      break;
  }
  if (frame.id() != 0) unexpected_frames_++;
}

void TestDevice::DrainQueued() {
  if (!client_) return;
  while (client_->queued() > 0) {
    std::optional<im::v1::Frame> frame = client_->Receive(Millis(0));
    if (!frame) return;
    Absorb(std::move(*frame));
  }
}

void TestDevice::Hold(const im::v1::Message& message) {
  ConvState& state = convs_[message.conv_id()];
  auto [it, inserted] = state.held.emplace(message.seq(), message);
  if (!inserted && it->second.msg_id() != message.msg_id()) {
    conflicts_.push_back(absl::StrCat(uid_, "/", device_, " ", message.conv_id(), " seq ",
                                      message.seq(), ": msg_id ", it->second.msg_id(), " then ",
                                      message.msg_id()));
  }
}

void TestDevice::HoldOwn(const im::v1::SendReq& req, const im::v1::SendResp& resp) {
  if (resp.status().code() != im::v1::OK) return;
  im::v1::Message message;
  message.set_conv_id(resp.conv_id());
  message.set_seq(resp.seq());
  message.set_msg_id(resp.msg_id());
  message.set_sender(uid_);
  message.set_client_msg_id(resp.client_msg_id());
  message.set_type(req.type());
  message.set_body(req.body());
  message.set_created_ms(resp.server_time_ms());
  Hold(message);
}

std::vector<uint64_t> SeqsOf(const std::vector<im::v1::Message>& messages) {
  std::vector<uint64_t> seqs;
  seqs.reserve(messages.size());
  for (const im::v1::Message& m : messages) seqs.push_back(m.seq());
  return seqs;
}

std::vector<uint64_t> SeqsOf(const std::vector<PushedMessage>& pushed) {
  std::vector<uint64_t> seqs;
  seqs.reserve(pushed.size());
  for (const PushedMessage& p : pushed) seqs.push_back(p.message.seq());
  return seqs;
}

std::vector<im::v1::Message> MessagesOf(const std::vector<PushedMessage>& pushed) {
  std::vector<im::v1::Message> out;
  out.reserve(pushed.size());
  for (const PushedMessage& p : pushed) out.push_back(p.message);
  return out;
}

PushTally TallyPushes(const std::vector<PushedMessage>& pushed,
                      const std::set<uint64_t>& expected) {
  PushTally tally;
  std::set<uint64_t> seen;
  uint64_t highest = 0;
  for (const PushedMessage& p : pushed) {
    tally.pushed++;
    const uint64_t seq = p.message.seq();
    if (seq < highest) tally.overtaken++;
    highest = std::max(highest, seq);
    if (!seen.insert(seq).second) {
      tally.duplicates++;
      tally.duplicated.push_back(seq);
    } else if (expected.count(seq) == 0) {
      tally.unexpected.push_back(seq);
    }
  }
  for (uint64_t seq : expected) {
    if (seen.count(seq) == 0) tally.missing.push_back(seq);
  }
  std::sort(tally.unexpected.begin(), tally.unexpected.end());
  std::sort(tally.duplicated.begin(), tally.duplicated.end());
  tally.duplicated.erase(std::unique(tally.duplicated.begin(), tally.duplicated.end()),
                         tally.duplicated.end());
  return tally;
}

std::string PushTally::ToString() const {
  return absl::StrCat(pushed, " pushed, ", overtaken, " out of order, ", duplicates, " duplicates ",
                      SeqList(duplicated), ", ", missing.size(), " missing ", SeqList(missing),
                      ", ", unexpected.size(), " unexpected ", SeqList(unexpected));
}

std::string SeqList(const std::vector<uint64_t>& seqs) {
  constexpr size_t kMaxShown = 60;
  if (seqs.size() <= kMaxShown) return absl::StrCat("[", absl::StrJoin(seqs, ", "), "]");
  std::vector<uint64_t> head(seqs.begin(), seqs.begin() + kMaxShown / 2);
  std::vector<uint64_t> tail(seqs.end() - kMaxShown / 2, seqs.end());
  return absl::StrCat("[", absl::StrJoin(head, ", "), ", ... (", seqs.size() - kMaxShown,
                      " more) ..., ", absl::StrJoin(tail, ", "), "]");
}

::testing::AssertionResult EachSeqOnceInOrder(const std::vector<im::v1::Message>& messages) {
  for (size_t i = 1; i < messages.size(); ++i) {
    if (messages[i].seq() <= messages[i - 1].seq()) {
      return ::testing::AssertionFailure()
             << "seq " << messages[i].seq() << " at index " << i << " after seq "
             << messages[i - 1].seq() << "; seqs " << SeqList(SeqsOf(messages));
    }
  }
  return ::testing::AssertionSuccess();
}

bool IsSystemNotice(const im::v1::Message& message) {
  return message.type() == im::v1::SYSTEM && message.sender() == "@system";
}

size_t NoticeCount(const std::vector<im::v1::Message>& messages) {
  return std::count_if(messages.begin(), messages.end(), IsSystemNotice);
}

::testing::AssertionResult SeqsAre(const std::vector<im::v1::Message>& messages,
                                   const std::vector<uint64_t>& expected) {
  std::vector<uint64_t> got;
  for (const im::v1::Message& message : messages) {
    if (!IsSystemNotice(message)) got.push_back(message.seq());
  }
  if (got == expected) return ::testing::AssertionSuccess();
  std::set<uint64_t> got_set(got.begin(), got.end());
  std::vector<uint64_t> missing;
  for (uint64_t seq : expected) {
    if (got_set.count(seq) == 0) missing.push_back(seq);
  }
  std::set<uint64_t> expected_set(expected.begin(), expected.end());
  std::vector<uint64_t> extra;
  for (uint64_t seq : got) {
    if (expected_set.count(seq) == 0) extra.push_back(seq);
  }
  ::testing::AssertionResult failure = ::testing::AssertionFailure();
  if (missing.empty() && extra.empty() && got.size() == expected.size()) {
    // The right seqs, each once, out of order: show where.
    size_t at = 0;
    while (at < got.size() && got[at] == expected[at]) at++;
    const size_t from = at >= 3 ? at - 3 : 0;
    const size_t to = std::min(got.size(), at + 4);
    return failure << "the right " << got.size() << " seqs in the wrong order: at index " << at
                   << " got " << SeqList({got.begin() + from, got.begin() + to}) << ", expected "
                   << SeqList({expected.begin() + from, expected.begin() + to});
  }
  return failure << "got " << got.size() << " seqs " << SeqList(got) << ", expected "
                 << expected.size() << " " << SeqList(expected) << "; missing " << SeqList(missing)
                 << ", unexpected " << SeqList(extra);
}

}  // namespace im::e2e
