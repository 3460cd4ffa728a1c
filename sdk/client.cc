#include "sdk/client.h"

#include <memory>
#include <utility>

#include "common/base64url.h"
#include "common/clock.h"
#include "common/random_id.h"
#include "nlohmann/json.hpp"
#include "sdk/client_core.h"
#include "sdk/in_memory_state_store.h"
#include "sdk/wire_conversions.h"

namespace im::sdk {
namespace {

// The response's own status when the request got an answer, else why it did not.
template <typename Resp>
Status Outcome(const Status& transport, const Resp* resp) {
  if (!transport.ok()) return transport;
  return StatusOf(resp->status());
}

// What a call the network thread's full queue refused answers, on the calling thread.
Status QueueFull() { return Status{im::v1::RESOURCE_EXHAUSTED, "the client's queue is full"}; }

}  // namespace

const char* ConnectionStateName(ConnectionState state) {
  switch (state) {
    case ConnectionState::kIdle:
      return "idle";
    case ConnectionState::kConnecting:
      return "connecting";
    case ConnectionState::kConnected:
      return "connected";
    case ConnectionState::kKicked:
      return "kicked";
    case ConnectionState::kAuthFailed:
      return "auth_failed";
  }
  return "unknown";
}

std::string UidFromToken(const std::string& token) {
  const size_t dot = token.find('.');
  std::string payload;
  if (dot == std::string::npos || !common::Base64UrlDecode(token.substr(0, dot), &payload)) {
    return "";
  }
  nlohmann::json claims = nlohmann::json::parse(payload, nullptr, /*allow_exceptions=*/false);
  if (!claims.is_object() || !claims.contains("uid") || !claims["uid"].is_string()) return "";
  return claims["uid"].get<std::string>();
}

Client::Client(ClientOptions options, ClientListener* listener, std::unique_ptr<StateStore> store)
    : uid_(UidFromToken(options.token)) {
  if (store == nullptr) store = std::make_unique<InMemoryStateStore>();
  core_ = std::make_unique<ClientCore>(std::move(options), listener, std::move(store), uid_);
}

Client::~Client() = default;

void Client::Start() {
  core_->Post([core = core_.get()]() { core->StartConnecting(); });
}

void Client::Stop() {
  core_->Post([core = core_.get()]() { core->StopConnecting(); });
}

void Client::SetToken(std::string token) {
  core_->Post([core = core_.get(), token = std::move(token)]() mutable {
    core->ReplaceToken(std::move(token));
  });
}

std::string Client::Send(const std::string& conv_id, std::string body, int type) {
  PendingSend send;
  send.conv_id = conv_id;
  send.type = type;
  send.body = std::move(body);
  return Queue(std::move(send));
}

std::string Client::SendTo(const std::string& to_uid, std::string body, int type) {
  PendingSend send;
  send.to_uid = to_uid;
  send.type = type;
  send.body = std::move(body);
  return Queue(std::move(send));
}

std::string Client::Recall(const std::string& conv_id, uint64_t seq) {
  PendingSend send;
  send.conv_id = conv_id;
  send.type = kMessageRecall;
  send.ref_seq = seq;
  return Queue(std::move(send));
}

std::string Client::Edit(const std::string& conv_id, uint64_t seq, std::string body) {
  PendingSend send;
  send.conv_id = conv_id;
  send.type = kMessageEdit;
  send.ref_seq = seq;
  send.body = std::move(body);
  return Queue(std::move(send));
}

void Client::Typing(const std::string& conv_id) {
  im::v1::Frame frame;
  frame.mutable_typing_req()->set_conv_id(conv_id);
  core_->Post(
      [core = core_.get(), frame = std::move(frame)]() mutable { core->Notice(std::move(frame)); });
}

std::string Client::Queue(PendingSend send) {
  send.client_msg_id = common::RandomHexId();
  send.created_ms = common::UnixMillis();
  std::string id = send.client_msg_id;
  const bool queued = core_->Post(
      [core = core_.get(), send = std::move(send)]() mutable { core->QueueSend(std::move(send)); });
  return queued ? id : std::string();
}

void Client::Call(im::v1::Frame request, bool resend_on_reconnect,
                  std::function<void(const Status&, const im::v1::Frame*)> handler) {
  std::function<void(const Status&, const im::v1::Frame*)> on_refusal = handler;
  const bool queued = core_->Post([core = core_.get(), request = std::move(request),
                                   resend_on_reconnect, handler = std::move(handler)]() mutable {
    core->Request(std::move(request), resend_on_reconnect, std::move(handler));
  });
  if (!queued) {
    on_refusal(QueueFull(), nullptr);
  }
}

void Client::ListConversations(std::function<void(Status, std::vector<Conversation>)> done) {
  ListConversationsFrom("", std::make_shared<std::vector<Conversation>>(), std::move(done));
}

void Client::ListConversationsFrom(const std::string& page_token,
                                   std::shared_ptr<std::vector<Conversation>> so_far,
                                   std::function<void(Status, std::vector<Conversation>)> done) {
  im::v1::Frame frame;
  frame.mutable_conversations_req()->set_limit(100);
  frame.mutable_conversations_req()->set_page_token(page_token);
  Call(std::move(frame), true,
       [this, so_far, done = std::move(done)](const Status& transport,
                                              const im::v1::Frame* response) {
         const im::v1::ConversationsResp* resp =
             response != nullptr ? &response->conversations_resp() : nullptr;
         Status status = Outcome(transport, resp);
         if (status.ok()) {
           for (const im::v1::Conversation& item : resp->conversations()) {
             so_far->push_back(ConversationOf(item));
           }
           if (!resp->next_page_token().empty()) {
             return ListConversationsFrom(resp->next_page_token(), so_far, std::move(done));
           }
         }
         core_->Notify([status, so_far, done] {
           done(status, status.ok() ? *so_far : std::vector<Conversation>());
         });
       });
}

void Client::LoadHistory(const std::string& conv_id, uint64_t before_seq, uint32_t limit,
                         std::function<void(Status, HistoryPage)> done) {
  std::function<void(Status, HistoryPage)> on_refusal = done;
  const bool queued =
      core_->Post([this, conv_id, before_seq, limit, done = std::move(done)]() mutable {
        // Runs on the network thread, where the delivered cursor lives.
        const uint64_t before = before_seq != 0 ? before_seq : core_->delivered(conv_id) + 1;
        const uint64_t first = before > limit ? before - limit : 1;
        im::v1::Frame frame;
        frame.mutable_sync_req()->set_conv_id(conv_id);
        frame.mutable_sync_req()->set_after_seq(first - 1);
        frame.mutable_sync_req()->set_limit(static_cast<uint32_t>(before - first));
        core_->Request(
            std::move(frame), true,
            [this, before, done = std::move(done)](const Status& transport,
                                                   const im::v1::Frame* response) {
              const im::v1::SyncResp* resp = response != nullptr ? &response->sync_resp() : nullptr;
              Status status = Outcome(transport, resp);
              HistoryPage page;
              if (status.ok()) {
                for (const im::v1::Message& message : resp->messages()) {
                  if (message.seq() < before) page.messages.push_back(MessageOf(message));
                }
                for (const im::v1::SeqRange& hole : resp->holes()) {
                  page.holes.emplace_back(hole.first(), hole.last());
                }
              }
              core_->Notify([status, page = std::move(page), done] { done(status, page); });
            });
      });
  if (!queued) on_refusal(QueueFull(), {});
}

void Client::MarkRead(const std::string& conv_id, uint64_t read_seq,
                      std::function<void(Status, uint64_t)> done) {
  im::v1::Frame frame;
  frame.mutable_read_req()->set_conv_id(conv_id);
  frame.mutable_read_req()->set_read_seq(read_seq);
  Call(std::move(frame), true,
       [this, done = std::move(done)](const Status& transport, const im::v1::Frame* response) {
         const im::v1::ReadResp* resp = response != nullptr ? &response->read_resp() : nullptr;
         Status status = Outcome(transport, resp);
         const uint64_t stored = status.ok() ? resp->read_seq() : 0;
         core_->Notify([status, stored, done] { done(status, stored); });
       });
}

void Client::CreateGroup(const std::string& name, const std::vector<std::string>& members,
                         std::function<void(Status, GroupCreated)> done) {
  im::v1::Frame frame;
  frame.mutable_group_create_req()->set_name(name);
  for (const std::string& uid : members) frame.mutable_group_create_req()->add_members(uid);
  // Not resent after a lost connection: a second create would make a second group.
  Call(std::move(frame), false,
       [this, done = std::move(done)](const Status& transport, const im::v1::Frame* response) {
         const im::v1::GroupCreateResp* resp =
             response != nullptr ? &response->group_create_resp() : nullptr;
         Status status = Outcome(transport, resp);
         GroupCreated created;
         if (status.ok()) created = GroupCreated{resp->group_id(), resp->conv_id()};
         core_->Notify([status, created, done] { done(status, created); });
       });
}

void Client::JoinGroup(const std::string& group_id, const std::vector<std::string>& uids,
                       std::function<void(Status)> done) {
  im::v1::Frame frame;
  frame.mutable_group_join_req()->set_group_id(group_id);
  for (const std::string& uid : uids) frame.mutable_group_join_req()->add_uids(uid);
  Call(std::move(frame), true,
       [this, done = std::move(done)](const Status& transport, const im::v1::Frame* response) {
         Status status =
             Outcome(transport, response != nullptr ? &response->group_join_resp() : nullptr);
         core_->Notify([status, done] { done(status); });
       });
}

void Client::LeaveGroup(const std::string& group_id, const std::string& uid,
                        std::function<void(Status)> done) {
  im::v1::Frame frame;
  frame.mutable_group_leave_req()->set_group_id(group_id);
  frame.mutable_group_leave_req()->set_uid(uid);
  Call(std::move(frame), true,
       [this, done = std::move(done)](const Status& transport, const im::v1::Frame* response) {
         Status status =
             Outcome(transport, response != nullptr ? &response->group_leave_resp() : nullptr);
         core_->Notify([status, done] { done(status); });
       });
}

void Client::ListReaders(const std::string& conv_id, uint64_t seq, bool names,
                         std::function<void(Status, GroupReaders)> done) {
  ListReadersFrom(conv_id, seq, names, "", std::make_shared<GroupReaders>(), std::move(done));
}

void Client::ListReadersFrom(const std::string& conv_id, uint64_t seq, bool names,
                             const std::string& page_token, std::shared_ptr<GroupReaders> so_far,
                             std::function<void(Status, GroupReaders)> done) {
  im::v1::Frame frame;
  frame.mutable_readers_req()->set_conv_id(conv_id);
  frame.mutable_readers_req()->set_seq(seq);
  frame.mutable_readers_req()->set_names(names);
  frame.mutable_readers_req()->set_page_token(page_token);
  Call(std::move(frame), true,
       [this, conv_id, seq, names, so_far, done = std::move(done)](const Status& transport,
                                                                   const im::v1::Frame* response) {
         const im::v1::ReadersResp* resp =
             response != nullptr ? &response->readers_resp() : nullptr;
         Status status = Outcome(transport, resp);
         if (status.ok()) {
           so_far->read_count = resp->read_count();
           so_far->unread_count = resp->unread_count();
           so_far->counts_only = resp->counts_only();
           so_far->readers.insert(so_far->readers.end(), resp->readers().begin(),
                                  resp->readers().end());
           if (!resp->next_page_token().empty()) {
             return ListReadersFrom(conv_id, seq, names, resp->next_page_token(), so_far,
                                    std::move(done));
           }
         }
         core_->Notify([status, so_far, done] { done(status, *so_far); });
       });
}

void Client::SetGroupRole(const std::string& group_id, const std::string& uid, int role,
                          std::function<void(Status)> done) {
  im::v1::Frame frame;
  frame.mutable_group_set_role_req()->set_group_id(group_id);
  frame.mutable_group_set_role_req()->set_uid(uid);
  frame.mutable_group_set_role_req()->set_role(static_cast<im::v1::GroupRole>(role));
  // Not resent after a reconnect: a repeat could undo a hand-over of OWNER made in between.
  Call(std::move(frame), false,
       [this, done = std::move(done)](const Status& transport, const im::v1::Frame* response) {
         Status status =
             Outcome(transport, response != nullptr ? &response->group_set_role_resp() : nullptr);
         core_->Notify([status, done] { done(status); });
       });
}

void Client::ListGroupMembers(const std::string& group_id,
                              std::function<void(Status, std::vector<GroupMember>)> done) {
  ListGroupMembersFrom(group_id, "", std::make_shared<std::vector<GroupMember>>(), std::move(done));
}

void Client::ListGroupMembersFrom(const std::string& group_id, const std::string& page_token,
                                  std::shared_ptr<std::vector<GroupMember>> so_far,
                                  std::function<void(Status, std::vector<GroupMember>)> done) {
  im::v1::Frame frame;
  frame.mutable_group_members_req()->set_group_id(group_id);
  frame.mutable_group_members_req()->set_page_token(page_token);
  frame.mutable_group_members_req()->set_limit(500);
  Call(std::move(frame), true,
       [this, group_id, so_far, done = std::move(done)](const Status& transport,
                                                        const im::v1::Frame* response) {
         const im::v1::GroupMembersResp* resp =
             response != nullptr ? &response->group_members_resp() : nullptr;
         Status status = Outcome(transport, resp);
         if (status.ok()) {
           for (const im::v1::GroupMember& member : resp->members()) {
             so_far->push_back(GroupMember{member.uid(), member.role(), member.joined_seq()});
           }
           if (!resp->next_page_token().empty()) {
             return ListGroupMembersFrom(group_id, resp->next_page_token(), so_far,
                                         std::move(done));
           }
         }
         core_->Notify([status, so_far, done] {
           done(status, status.ok() ? *so_far : std::vector<GroupMember>());
         });
       });
}

void Client::WatchPresence(std::vector<std::string> uids,
                           std::function<void(Status, WatchedPresence)> done) {
  std::function<void(Status, WatchedPresence)> on_refusal = done;
  const bool queued =
      core_->Post([core = core_.get(), uids = std::move(uids), done = std::move(done)]() mutable {
        core->WatchPresence(std::move(uids), std::move(done));
      });
  if (!queued && on_refusal) on_refusal(QueueFull(), {});
}

ConnectionState Client::state() const { return core_->state(); }
ClientStats Client::stats() const { return core_->stats(); }

}  // namespace im::sdk
