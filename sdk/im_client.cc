// The C API (sdk/im_client.h) over im::sdk::Client.
#include "sdk/im_client.h"

#include <algorithm>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/tls/tls_context.h"
#include "sdk/client.h"
#include "sdk/sqlite_state_store.h"

namespace {

using im::sdk::Client;

// im.v1.Code INVALID_ARGUMENT: what a call refused for its arguments answers.
constexpr int kInvalidArgument = 3;

void CopyOut(const std::string& text, char* out, size_t out_len) {
  if (out == nullptr || out_len == 0) return;
  const size_t n = std::min(text.size(), out_len - 1);
  std::memcpy(out, text.data(), n);
  out[n] = '\0';
}

// The C trust settings, checked as the client will use them (files readable, pins well formed).
absl::Status TlsTrustOf(const im_client_tls_config& config, im::sdk::TlsTrust* trust) {
  if (config.pinned_key_count > 0 && config.pinned_keys == nullptr) {
    return absl::InvalidArgumentError("pinned_keys is NULL but pinned_key_count is not 0");
  }
  if (config.ca_file != nullptr) trust->ca_file = config.ca_file;
  if (config.server_name != nullptr) trust->server_name = config.server_name;
  for (size_t i = 0; i < config.pinned_key_count; ++i) {
    if (config.pinned_keys[i] == nullptr) return absl::InvalidArgumentError("a pinned key is NULL");
    trust->pinned_keys.emplace_back(config.pinned_keys[i]);
  }
  im::tls::ClientTlsOptions options;
  options.ca_file = trust->ca_file;
  options.pinned_keys = trust->pinned_keys;
  return im::tls::ClientContext::Create(options).status();
}

im_message View(const im::sdk::Message& message) {
  return im_message{message.conv_id.c_str(),
                    message.seq,
                    message.msg_id,
                    message.sender.c_str(),
                    message.client_msg_id.c_str(),
                    message.type,
                    message.body.data(),
                    message.body.size(),
                    message.created_ms,
                    message.ref_seq,
                    message.recalled ? 1 : 0,
                    message.edited_ms};
}

std::vector<im_message> View(const std::vector<im::sdk::Message>& messages) {
  std::vector<im_message> views;
  views.reserve(messages.size());
  for (const im::sdk::Message& message : messages) views.push_back(View(message));
  return views;
}

// Pointers to the characters of `texts`, valid while `texts` is.
std::vector<const char*> CStrings(const std::vector<std::string>& texts) {
  std::vector<const char*> pointers;
  pointers.reserve(texts.size());
  for (const std::string& text : texts) pointers.push_back(text.c_str());
  return pointers;
}

// C views of presences; they point into `presences`, which must outlive them. While one exists
// it is its thread's current views, which im_presence_platform reads (im_presence cannot grow:
// apps built against an earlier header index arrays of it by its old size).
class PresenceViews {
 public:
  explicit PresenceViews(const std::vector<im::sdk::Presence>& presences)
      : presences_(presences), outer_(current_) {
    devices_.reserve(presences.size());  // items_ point into it
    items_.reserve(presences.size());
    for (const im::sdk::Presence& presence : presences) {
      const std::vector<const char*>& devices = devices_.emplace_back(CStrings(presence.devices));
      items_.push_back(im_presence{presence.uid.c_str(), presence.online ? 1 : 0, devices.data(),
                                   devices.size(), presence.last_seen_ms});
    }
    current_ = this;
  }
  ~PresenceViews() { current_ = outer_; }
  PresenceViews(const PresenceViews&) = delete;
  PresenceViews& operator=(const PresenceViews&) = delete;

  const im_presence* data() const { return items_.data(); }
  size_t size() const { return items_.size(); }

  // The platform of `presence`'s device `index`, if `presence` is one of the current views'.
  static const char* PlatformOf(const im_presence* presence, size_t index) {
    for (const PresenceViews* views = current_; views != nullptr; views = views->outer_) {
      if (presence < views->items_.data() || presence >= views->items_.data() + views->size()) {
        continue;
      }
      const im::sdk::Presence& of = views->presences_[presence - views->items_.data()];
      return index < of.platforms.size() ? of.platforms[index].c_str() : nullptr;
    }
    return nullptr;
  }

 private:
  static thread_local const PresenceViews* current_;
  const std::vector<im::sdk::Presence>& presences_;
  const PresenceViews* outer_;
  std::vector<std::vector<const char*>> devices_;
  std::vector<im_presence> items_;
};

thread_local const PresenceViews* PresenceViews::current_ = nullptr;

// uids[0..count) as strings; false when one is NULL.
bool Strings(const char* const* uids, size_t count, std::vector<std::string>* out) {
  if (uids == nullptr && count != 0) return false;
  for (size_t i = 0; i < count; ++i) {
    if (uids[i] == nullptr) return false;
    out->emplace_back(uids[i]);
  }
  return true;
}

// A group call's `done` for the C++ API: forwards the code.
std::function<void(im::sdk::Status)> StatusCallback(im_status_cb done, void* user_data) {
  return [done, user_data](im::sdk::Status status) {
    if (done != nullptr) done(user_data, status.code);
  };
}

// Answers a call refused for its arguments, on the caller's thread (as a full queue is).
void RefuseArguments(im_status_cb done, void* user_data) {
  if (done != nullptr) done(user_data, kInvalidArgument);
}

// Forwards the C++ listener's callbacks to the C function pointers.
class CallbackBridge : public im::sdk::ClientListener {
 public:
  explicit CallbackBridge(const im_client_callbacks& callbacks) : callbacks_(callbacks) {}

  void OnStateChanged(im::sdk::ConnectionState state, const im::sdk::Status& reason) override {
    if (callbacks_.on_state == nullptr) return;
    callbacks_.on_state(callbacks_.user_data, static_cast<int>(state), reason.code,
                        reason.message.c_str());
  }
  void OnMessages(const std::string&, const std::vector<im::sdk::Message>& messages) override {
    if (callbacks_.on_messages == nullptr) return;
    std::vector<im_message> views = View(messages);
    callbacks_.on_messages(callbacks_.user_data, views.data(), views.size());
  }
  void OnSendResult(const im::sdk::SendResult& result) override {
    if (callbacks_.on_send_result == nullptr) return;
    callbacks_.on_send_result(callbacks_.user_data, result.client_msg_id.c_str(),
                              result.status.code, result.conv_id.c_str(), result.seq);
  }
  void OnReadReceipt(const im::sdk::ReadReceipt& receipt) override {
    if (callbacks_.on_read_receipt == nullptr) return;
    callbacks_.on_read_receipt(callbacks_.user_data, receipt.conv_id.c_str(),
                               receipt.reader.c_str(), receipt.read_seq);
  }
  void OnTyping(const im::sdk::TypingNotice& notice) override {
    if (callbacks_.on_typing == nullptr) return;
    callbacks_.on_typing(callbacks_.user_data, notice.conv_id.c_str(), notice.uid.c_str());
  }
  void OnPresence(const std::vector<im::sdk::Presence>& presences) override {
    im_presence_cb on_presence;
    void* user_data;
    {
      std::lock_guard<std::mutex> lock(presence_mutex_);
      on_presence = on_presence_;
      user_data = presence_user_data_;
    }
    if (on_presence == nullptr) return;
    PresenceViews views(presences);
    on_presence(user_data, views.data(), views.size());
  }

  // Any thread (the app's), while callbacks run on the network thread.
  void SetOnPresence(im_presence_cb on_presence, void* user_data) {
    std::lock_guard<std::mutex> lock(presence_mutex_);
    on_presence_ = on_presence;
    presence_user_data_ = user_data;
  }

 private:
  im_client_callbacks callbacks_;
  std::mutex presence_mutex_;
  im_presence_cb on_presence_ ABSL_GUARDED_BY(presence_mutex_) = nullptr;
  void* presence_user_data_ ABSL_GUARDED_BY(presence_mutex_) = nullptr;
};

}  // namespace

struct im_client {
  std::unique_ptr<CallbackBridge> bridge;
  std::unique_ptr<Client> client;  // destroyed before the bridge it calls
};

static_assert(IM_STATE_IDLE == static_cast<int>(im::sdk::ConnectionState::kIdle));
static_assert(IM_STATE_CONNECTING == static_cast<int>(im::sdk::ConnectionState::kConnecting));
static_assert(IM_STATE_CONNECTED == static_cast<int>(im::sdk::ConnectionState::kConnected));
static_assert(IM_STATE_KICKED == static_cast<int>(im::sdk::ConnectionState::kKicked));
static_assert(IM_STATE_AUTH_FAILED == static_cast<int>(im::sdk::ConnectionState::kAuthFailed));

extern "C" {

im_client* im_client_create(const im_client_config* config, const im_client_callbacks* callbacks,
                            char* error, size_t error_len) {
  return im_client_create_with_tls(config, nullptr, callbacks, error, error_len);
}

im_client* im_client_create_with_tls(const im_client_config* config,
                                     const im_client_tls_config* tls,
                                     const im_client_callbacks* callbacks, char* error,
                                     size_t error_len) {
  if (config == nullptr || callbacks == nullptr || config->token == nullptr ||
      config->gateways == nullptr || config->gateway_count == 0) {
    CopyOut("config, callbacks, token and at least one gateway are required", error, error_len);
    return nullptr;
  }
  im::sdk::ClientOptions options;
  for (size_t i = 0; i < config->gateway_count; ++i) {
    if (config->gateways[i] == nullptr) {
      CopyOut("a gateway address is NULL", error, error_len);
      return nullptr;
    }
    options.gateways.emplace_back(config->gateways[i]);
  }
  options.token = config->token;
  if (config->device != nullptr) options.device = config->device;
  options.platform = "c";
  options.send_timeout_ms = config->send_timeout_ms;
  if (tls != nullptr) {
    if (absl::Status trust = TlsTrustOf(*tls, &options.tls); !trust.ok()) {
      CopyOut(std::string(trust.message()), error, error_len);
      return nullptr;
    }
  }
  std::unique_ptr<im::sdk::StateStore> store;
  if (config->sqlite_path != nullptr) {
    auto opened = im::sdk::SqliteStateStore::Open(config->sqlite_path);
    if (!opened.ok()) {
      CopyOut(opened.status().ToString(), error, error_len);
      return nullptr;
    }
    store = std::move(*opened);
  }
  auto* handle = new im_client;
  handle->bridge = std::make_unique<CallbackBridge>(*callbacks);
  handle->client =
      std::make_unique<Client>(std::move(options), handle->bridge.get(), std::move(store));
  return handle;
}

void im_client_destroy(im_client* client) {
  if (client == nullptr) return;
  client->client.reset();
  delete client;
}

void im_client_start(im_client* client) { client->client->Start(); }
void im_client_stop(im_client* client) { client->client->Stop(); }
void im_client_set_token(im_client* client, const char* token) {
  if (token != nullptr) client->client->SetToken(token);
}
int im_client_state(const im_client* client) { return static_cast<int>(client->client->state()); }

int im_client_send(im_client* client, const char* conv_id, const char* to_uid, const char* body,
                   size_t body_len, char* out_id, size_t out_id_len) {
  return im_client_send_message(client, conv_id, to_uid, IM_MESSAGE_TEXT, body, body_len, out_id,
                                out_id_len);
}

int im_client_send_message(im_client* client, const char* conv_id, const char* to_uid, int type,
                           const char* body, size_t body_len, char* out_id, size_t out_id_len) {
  if (client == nullptr || (conv_id == nullptr) == (to_uid == nullptr) ||
      (body == nullptr && body_len != 0) || type < IM_MESSAGE_TEXT || type > IM_MESSAGE_CUSTOM) {
    return -1;
  }
  std::string text(body == nullptr ? "" : std::string(body, body_len));
  const std::string id = conv_id != nullptr ? client->client->Send(conv_id, std::move(text), type)
                                            : client->client->SendTo(to_uid, std::move(text), type);
  CopyOut(id, out_id, out_id_len);
  return 0;
}

int im_client_recall(im_client* client, const char* conv_id, uint64_t seq, char* out_id,
                     size_t out_id_len) {
  if (client == nullptr || conv_id == nullptr || seq == 0) return -1;
  CopyOut(client->client->Recall(conv_id, seq), out_id, out_id_len);
  return 0;
}

int im_client_edit(im_client* client, const char* conv_id, uint64_t seq, const char* body,
                   size_t body_len, char* out_id, size_t out_id_len) {
  if (client == nullptr || conv_id == nullptr || seq == 0 || (body == nullptr && body_len != 0)) {
    return -1;
  }
  std::string text(body == nullptr ? "" : std::string(body, body_len));
  CopyOut(client->client->Edit(conv_id, seq, std::move(text)), out_id, out_id_len);
  return 0;
}

void im_client_typing(im_client* client, const char* conv_id) {
  if (client == nullptr || conv_id == nullptr) return;
  client->client->Typing(conv_id);
}

void im_client_mark_read(im_client* client, const char* conv_id, uint64_t read_seq) {
  if (client == nullptr || conv_id == nullptr) return;
  client->client->MarkRead(conv_id, read_seq, [](im::sdk::Status, uint64_t) {});
}

void im_client_list_conversations(im_client* client, im_conversations_cb done, void* user_data) {
  if (client == nullptr || done == nullptr) return;
  client->client->ListConversations(
      [done, user_data](im::sdk::Status status, std::vector<im::sdk::Conversation> list) {
        std::vector<im_message> last_messages;
        last_messages.reserve(list.size());  // views point into it
        std::vector<im_conversation> views;
        for (const im::sdk::Conversation& item : list) {
          const im_message* last = nullptr;
          if (!item.last_message.conv_id.empty()) {
            last = &last_messages.emplace_back(View(item.last_message));
          }
          views.push_back(im_conversation{item.conv_id.c_str(), item.max_seq, item.read_seq,
                                          item.unread, item.peer_read_seq, last, item.updated_ms});
        }
        done(user_data, status.code, views.data(), views.size());
      });
}

void im_client_load_history(im_client* client, const char* conv_id, uint64_t before_seq,
                            uint32_t limit, im_history_cb done, void* user_data) {
  if (client == nullptr || conv_id == nullptr || done == nullptr) return;
  client->client->LoadHistory(conv_id, before_seq, limit,
                              [done, user_data](im::sdk::Status status, im::sdk::HistoryPage page) {
                                std::vector<im_message> views = View(page.messages);
                                done(user_data, status.code, views.data(), views.size());
                              });
}

void im_client_create_group(im_client* client, const char* name, const char* const* members,
                            size_t member_count, im_group_created_cb done, void* user_data) {
  std::vector<std::string> uids;
  if (client == nullptr || !Strings(members, member_count, &uids)) {
    if (done != nullptr) done(user_data, kInvalidArgument, "", "");
    return;
  }
  client->client->CreateGroup(
      name == nullptr ? "" : name, uids,
      [done, user_data](im::sdk::Status status, im::sdk::GroupCreated created) {
        if (done != nullptr) {
          done(user_data, status.code, created.group_id.c_str(), created.conv_id.c_str());
        }
      });
}

void im_client_join_group(im_client* client, const char* group_id, const char* const* uids,
                          size_t uid_count, im_status_cb done, void* user_data) {
  std::vector<std::string> joining;
  if (client == nullptr || group_id == nullptr || !Strings(uids, uid_count, &joining)) {
    return RefuseArguments(done, user_data);
  }
  client->client->JoinGroup(group_id, joining, StatusCallback(done, user_data));
}

void im_client_leave_group(im_client* client, const char* group_id, const char* uid,
                           im_status_cb done, void* user_data) {
  if (client == nullptr || group_id == nullptr) return RefuseArguments(done, user_data);
  client->client->LeaveGroup(group_id, uid == nullptr ? "" : uid, StatusCallback(done, user_data));
}

void im_client_list_group_members(im_client* client, const char* group_id, im_group_members_cb done,
                                  void* user_data) {
  if (client == nullptr || group_id == nullptr) {
    if (done != nullptr) done(user_data, kInvalidArgument, nullptr, 0);
    return;
  }
  client->client->ListGroupMembers(
      group_id,
      [done, user_data](im::sdk::Status status, std::vector<im::sdk::GroupMember> members) {
        if (done == nullptr) return;
        std::vector<im_group_member> views;
        views.reserve(members.size());
        for (const im::sdk::GroupMember& member : members) {
          views.push_back(im_group_member{member.uid.c_str(), member.role, member.joined_seq});
        }
        done(user_data, status.code, views.data(), views.size());
      });
}

void im_client_list_readers(im_client* client, const char* conv_id, uint64_t seq, int names,
                            im_readers_cb done, void* user_data) {
  if (client == nullptr || conv_id == nullptr) {
    if (done != nullptr) done(user_data, kInvalidArgument, 0, 0, nullptr, 0, 0);
    return;
  }
  client->client->ListReaders(
      conv_id, seq, names != 0,
      [done, user_data](im::sdk::Status status, im::sdk::GroupReaders readers) {
        if (done == nullptr) return;
        std::vector<const char*> uids = CStrings(readers.readers);
        done(user_data, status.code, readers.read_count, readers.unread_count, uids.data(),
             uids.size(), readers.counts_only ? 1 : 0);
      });
}

void im_client_set_group_role(im_client* client, const char* group_id, const char* uid, int role,
                              im_status_cb done, void* user_data) {
  if (client == nullptr || group_id == nullptr || uid == nullptr || role < IM_ROLE_MEMBER ||
      role > IM_ROLE_OWNER) {
    return RefuseArguments(done, user_data);
  }
  client->client->SetGroupRole(group_id, uid, role, StatusCallback(done, user_data));
}

void im_client_set_on_presence(im_client* client, im_presence_cb on_presence, void* user_data) {
  if (client == nullptr) return;
  client->bridge->SetOnPresence(on_presence, user_data);
}

const char* im_presence_platform(const im_presence* presence, size_t index) {
  if (presence == nullptr || index >= presence->device_count) return nullptr;
  return PresenceViews::PlatformOf(presence, index);
}

void im_client_watch_presence(im_client* client, const char* const* uids, size_t count,
                              im_presence_watch_cb done, void* user_data) {
  std::vector<std::string> watched;
  if (client == nullptr || !Strings(uids, count, &watched)) {
    if (done != nullptr) done(user_data, kInvalidArgument, nullptr, 0, nullptr, 0);
    return;
  }
  std::function<void(im::sdk::Status, im::sdk::WatchedPresence)> answer;
  if (done != nullptr) {
    answer = [done, user_data](im::sdk::Status status, im::sdk::WatchedPresence result) {
      PresenceViews views(result.presences);
      std::vector<const char*> refused = CStrings(result.refused);
      done(user_data, status.code, views.data(), views.size(), refused.data(), refused.size());
    };
  }
  client->client->WatchPresence(std::move(watched), std::move(answer));
}

}  // extern "C"
