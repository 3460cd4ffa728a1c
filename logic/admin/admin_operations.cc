#include "logic/admin/admin_operations.h"

#include <chrono>
#include <future>
#include <memory>
#include <variant>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "fmt/format.h"
#include "logic/conversation/conversation_id.h"
#include "logic/conversation/message_json.h"
#include "logic/reply_status.h"
#include "store/group_rules.h"

namespace im::logic {
namespace {

using Call = AdminApi::Call;
using store::RestrictionKind;

constexpr size_t kMaxStateQuery = 1'000;
constexpr size_t kMaxMembersPerCall = 10'000;
constexpr int64_t kMaxMuteSec = 365 * 86'400;
constexpr int64_t kMaxUnixMs = 253'402'300'799'000;  // 9999-12-31
constexpr size_t kMaxSendIdBytes = 58;               // client_msg_id: "api:" + id, at most 64
constexpr char kSendIdPrefix[] = "api:";
constexpr char kKickedByAdmin[] = "closed by the app's administrator";
constexpr char kTokensRevoked[] = "the app revoked this user's tokens";

AdminReply Refused(const absl::Status& status) {
  return AdminReply::Refused(CodeOf(status), std::string(status.message()));
}

AdminReply Invalid(std::string message) {
  return AdminReply::Refused(im::v1::INVALID_ARGUMENT, std::move(message));
}

// A path's uid or group id, or the 400 that refuses it.
std::optional<AdminReply> CheckUid(const std::string& uid) {
  if (IsValidUid(uid)) return std::nullopt;
  return Invalid("uid must be 1-64 printable ASCII bytes without space, ':' or '|'");
}

std::optional<AdminReply> CheckGroupId(const std::string& group_id) {
  if (store::CheckGroupId(group_id).ok()) return std::nullopt;
  return Invalid("group_id must be 1-64 bytes of [A-Za-z0-9_-]");
}

// The query parameter `name` as an integer in [min, max] (absent: `fallback`), or the 400.
std::variant<uint64_t, AdminReply> QueryNumber(const Call& call, const char* name,
                                               uint64_t fallback, uint64_t min, uint64_t max) {
  const auto found = call.query->find(name);
  if (found == call.query->end()) return fallback;
  uint64_t value = 0;
  const bool digits = !found->second.empty() && found->second.size() <= 20 &&
                      std::all_of(found->second.begin(), found->second.end(), absl::ascii_isdigit);
  if (!digits || !absl::SimpleAtoi(found->second, &value) || value < min || value > max) {
    return Invalid(fmt::format("{} must be an integer from {} to {}", name, min, max));
  }
  return value;
}

// The message types the admin API sends (changes are a client's, of its own messages).
std::optional<im::v1::MessageType> SendableType(const std::string& name) {
  im::v1::MessageType type;
  if (!im::v1::MessageType_Parse(name, &type)) return std::nullopt;
  if (type == im::v1::MESSAGE_TYPE_UNSPECIFIED || type == im::v1::RECALL || type == im::v1::EDIT) {
    return std::nullopt;
  }
  return type;
}

// A status code's refusal, or nullopt for OK.
std::optional<AdminReply> RefusalOf(const im::v1::Frame& response, const im::v1::Status& status) {
  if (response.has_error()) {
    return AdminReply::Refused(response.error().code(), response.error().message(),
                               response.error().retry_after_ms());
  }
  if (status.code() == im::v1::OK) return std::nullopt;
  return AdminReply::Refused(status);
}

im::v1::Caller SystemCaller() {
  im::v1::Caller caller;
  caller.set_uid(kSystemUid);
  caller.set_admin(true);
  return caller;
}

}  // namespace

std::vector<AdminApi::Route> AdminOperations::Routes() {
  auto bind = [this](AdminReply (AdminOperations::*method)(const Call&)) {
    return [this, method](const Call& call) { return (this->*method)(call); };
  };
  using O = AdminOperations;
  return {
      {"GET", "/v1/users/:uid/state", "getUserState", bind(&O::GetUserState)},
      {"POST", "/v1/users/states", "queryUserStates", bind(&O::QueryUserStates)},
      {"POST", "/v1/users/:uid/kick", "kickUser", bind(&O::KickUser)},
      {"PUT", "/v1/users/:uid/mute", "muteUser", bind(&O::MuteUser)},
      {"DELETE", "/v1/users/:uid/mute", "unmuteUser", bind(&O::UnmuteUser)},
      {"POST", "/v1/users/:uid/revoke-tokens", "revokeTokens", bind(&O::RevokeTokens)},
      {"POST", "/v1/messages", "sendMessage", bind(&O::SendMessage)},
      {"GET", "/v1/conversations/:conv_id/messages", "readHistory", bind(&O::ReadHistory)},
      {"POST", "/v1/groups", "createGroup", bind(&O::CreateGroup)},
      {"GET", "/v1/groups/:group_id", "getGroup", bind(&O::GetGroup)},
      {"DELETE", "/v1/groups/:group_id", "dismissGroup", bind(&O::DismissGroup)},
      {"GET", "/v1/groups/:group_id/members", "listGroupMembers", bind(&O::ListGroupMembers)},
      {"POST", "/v1/groups/:group_id/members", "addGroupMembers", bind(&O::AddGroupMembers)},
      {"POST", "/v1/groups/:group_id/members/remove", "removeGroupMembers",
       bind(&O::RemoveGroupMembers)},
      {"PUT", "/v1/groups/:group_id/members/:uid/role", "setGroupRole", bind(&O::SetGroupRole)},
      {"PUT", "/v1/groups/:group_id/mute", "muteGroup", bind(&O::MuteGroup)},
      {"DELETE", "/v1/groups/:group_id/mute", "unmuteGroup", bind(&O::UnmuteGroup)},
  };
}

im::v1::Frame AdminOperations::RunAs(const std::string& uid, im::v1::Frame request) {
  const int64_t timeout_ms = deps_.options->admin_api.timeout_ms;
  im::v1::Ingress entry;
  im::v1::Caller* caller = entry.mutable_caller();
  caller->set_uid(uid);
  caller->set_admin(true);
  caller->set_request_id(fmt::format("admin-{}-{}", deps_.options->logic_id, ++calls_));
  entry.set_deadline_ms(deps_.now_ms() + timeout_ms);
  *entry.mutable_request() = std::move(request);
  auto answer = std::make_shared<std::promise<im::v1::Frame>>();
  std::future<im::v1::Frame> answered = answer->get_future();
  deps_.dispatcher->DispatchAdmin(
      std::move(entry), [answer](std::optional<im::v1::Frame> response) mutable {
        answer->set_value(response ? std::move(*response) : im::v1::Frame());
      });
  // The dispatcher answers DEADLINE_EXCEEDED at the deadline itself; this only bounds a wait
  // that something lost.
  if (answered.wait_for(std::chrono::milliseconds(timeout_ms + 1'000)) ==
      std::future_status::ready) {
    return answered.get();
  }
  im::v1::Frame timed_out;
  timed_out.mutable_error()->set_code(im::v1::DEADLINE_EXCEEDED);
  timed_out.mutable_error()->set_message("not answered within admin_api.timeout_ms");
  return timed_out;
}

absl::StatusOr<std::vector<nlohmann::json>> AdminOperations::UserStates(
    const std::vector<std::string>& uids) {
  absl::StatusOr<std::vector<std::vector<store::Session>>> sessions =
      deps_.registry->LookupMany(uids);
  if (!sessions.ok()) return sessions.status();
  std::vector<nlohmann::json> states;
  states.reserve(uids.size());
  for (size_t i = 0; i < uids.size(); ++i) {
    nlohmann::json devices = nlohmann::json::array();
    for (const store::Session& session : (*sessions)[i]) {
      devices.push_back({{"device", session.device},
                         {"platform", session.platform},
                         {"gateway_id", session.gateway_id},
                         {"since_ms", session.login_ms}});
    }
    states.push_back(
        {{"uid", uids[i]},
         {"online", !devices.empty()},
         {"sessions", std::move(devices)},
         {"muted_until_ms", deps_.restrictions->UserMutedUntil(uids[i])},
         {"tokens_revoked_before_ms", deps_.restrictions->TokensRevokedBefore(uids[i])}});
  }
  return states;
}

AdminReply AdminOperations::GetUserState(const Call& call) {
  const std::string& uid = call.path.at("uid");
  if (auto bad = CheckUid(uid)) return *bad;
  absl::StatusOr<std::vector<nlohmann::json>> states = UserStates({uid});
  if (!states.ok()) return Refused(states.status());
  return AdminReply::Ok(std::move(states->front()));
}

AdminReply AdminOperations::QueryUserStates(const Call& call) {
  JsonBody body(call.body, false, {"uids"});
  std::vector<std::string> uids = body.Required("uids", body.Uids("uids", 1, kMaxStateQuery));
  if (!body.ok()) return Refused(body.status());
  absl::StatusOr<std::vector<nlohmann::json>> states = UserStates(uids);
  if (!states.ok()) return Refused(states.status());
  return AdminReply::Ok({{"users", std::move(*states)}});
}

AdminReply AdminOperations::KickUser(const Call& call) {
  const std::string& uid = call.path.at("uid");
  if (auto bad = CheckUid(uid)) return *bad;
  JsonBody body(call.body, true, {"device"});
  const std::string device = body.Uid("device").value_or("");  // devices follow the uid rules
  if (!body.ok()) return Refused(body.status());
  absl::StatusOr<size_t> kicked =
      deps_.sessions->Kick(uid, device, im::v1::Kick::ADMIN, kKickedByAdmin);
  if (!kicked.ok()) return Refused(kicked.status());
  return AdminReply::Ok({{"kicked", *kicked}});
}

AdminReply AdminOperations::PutMute(RestrictionKind kind, const std::string& subject,
                                    const Call& call) {
  JsonBody body(call.body, false, {"duration_sec"});
  const int64_t duration_sec =
      body.Required("duration_sec", body.Integer("duration_sec", 1, kMaxMuteSec));
  if (!body.ok()) return Refused(body.status());
  const int64_t now = deps_.now_ms();
  const store::Restriction mute{kind, subject, now, now + duration_sec * 1000};
  if (absl::Status status = deps_.restrictions->Put(mute); !status.ok()) return Refused(status);
  return AdminReply::Ok({{"muted_until_ms", mute.until_ms}});
}

AdminReply AdminOperations::LiftMute(RestrictionKind kind, const std::string& subject) {
  absl::StatusOr<bool> lifted = deps_.restrictions->Remove(kind, subject);
  if (!lifted.ok()) return Refused(lifted.status());
  return AdminReply::Ok({{"lifted", *lifted}});
}

AdminReply AdminOperations::MuteUser(const Call& call) {
  const std::string& uid = call.path.at("uid");
  if (auto bad = CheckUid(uid)) return *bad;
  return PutMute(RestrictionKind::kUserMute, uid, call);
}

AdminReply AdminOperations::UnmuteUser(const Call& call) {
  const std::string& uid = call.path.at("uid");
  if (auto bad = CheckUid(uid)) return *bad;
  return LiftMute(RestrictionKind::kUserMute, uid);
}

AdminReply AdminOperations::RevokeTokens(const Call& call) {
  const std::string& uid = call.path.at("uid");
  if (auto bad = CheckUid(uid)) return *bad;
  JsonBody body(call.body, true, {"issued_before_ms"});
  const std::optional<int64_t> before = body.Integer("issued_before_ms", 1, kMaxUnixMs);
  if (!body.ok()) return Refused(body.status());
  const int64_t now = deps_.now_ms();
  const int64_t issued_before_ms = before.value_or(now);
  // Kept until every token issued before it has expired, at least revocation_keep_sec from now.
  const int64_t keep_until =
      std::max(now, issued_before_ms) + int64_t{deps_.options->revocation_keep_sec} * 1000;
  const store::Restriction revocation{RestrictionKind::kTokenRevocation, uid, issued_before_ms,
                                      keep_until};
  if (absl::Status status = deps_.restrictions->Put(revocation); !status.ok()) {
    return Refused(status);
  }
  // Every connection goes (the gateways do not know their tokens' age); those whose tokens are
  // newer log in again.
  absl::StatusOr<size_t> kicked =
      deps_.sessions->Kick(uid, "", im::v1::Kick::TOKEN_REVOKED, kTokensRevoked);
  if (!kicked.ok()) return Refused(kicked.status());
  return AdminReply::Ok(
      {{"uid", uid}, {"issued_before_ms", issued_before_ms}, {"kicked", *kicked}});
}

AdminReply AdminOperations::SendMessage(const Call& call) {
  JsonBody body(call.body, false,
                {"id", "from", "to_uid", "group_id", "type", "body", "body_base64"});
  const std::string id = body.Required("id", body.String("id", 1, kMaxSendIdBytes));
  const std::string from = body.Uid("from").value_or(kSystemUid);
  const std::optional<std::string> to_uid = body.Uid("to_uid");
  const std::optional<std::string> group_id = body.GroupId("group_id");
  const std::string type_name = body.String("type", 1, 32).value_or("TEXT");
  const std::optional<std::string> text = body.String("body", 0, SIZE_MAX);
  const std::optional<std::string> base64 = body.String("body_base64", 0, SIZE_MAX);
  if (!body.ok()) return Refused(body.status());
  if (!std::all_of(id.begin(), id.end(), [](char c) { return c > ' ' && c <= '~'; })) {
    return Invalid("id must be printable ASCII without spaces");
  }
  if (to_uid.has_value() == group_id.has_value()) {
    return Invalid("name exactly one of to_uid and group_id");
  }
  if (text && base64) return Invalid("give body or body_base64, not both");
  const std::optional<im::v1::MessageType> type = SendableType(type_name);
  if (!type) return Invalid("type must be TEXT, IMAGE, FILE, CUSTOM or SYSTEM");
  im::v1::Frame request;
  im::v1::SendReq* send = request.mutable_send_req();
  if (base64 && !absl::Base64Unescape(*base64, send->mutable_body())) {
    return Invalid("body_base64 is not base64");
  }
  if (text) send->set_body(*text);
  if (group_id) {
    // The system is no member: the group must exist for it to speak there.
    if (from == kSystemUid) {
      if (absl::StatusOr<store::Group> group = ExistingGroup(*group_id); !group.ok()) {
        return Refused(group.status());
      }
    }
    send->set_conv_id(GroupConversation(*group_id));
  } else {
    send->set_to_uid(*to_uid);
  }
  send->set_client_msg_id(kSendIdPrefix + id);
  send->set_type(*type);
  const im::v1::Frame response = RunAs(from, std::move(request));
  const im::v1::SendResp& sent = response.send_resp();
  if (auto refusal = RefusalOf(response, sent.status())) return *refusal;
  return AdminReply::Ok({{"conv_id", sent.conv_id()},
                         {"seq", sent.seq()},
                         {"msg_id", std::to_string(sent.msg_id())},
                         {"server_time_ms", sent.server_time_ms()}});
}

AdminReply AdminOperations::ReadHistory(const Call& call) {
  const std::string& conv_id = call.path.at("conv_id");
  if (!ConversationId::Parse(conv_id)) {
    return AdminReply::Refused(im::v1::INVALID_CONVERSATION,
                               "conv_id must be s:<uid>:<uid> (in byte order) or g:<group id>");
  }
  const auto after_seq = QueryNumber(call, "after_seq", 0, 0, INT64_MAX);
  if (const auto* bad = std::get_if<AdminReply>(&after_seq)) return *bad;
  const auto limit = QueryNumber(call, "limit", 50, 1, 200);
  if (const auto* bad = std::get_if<AdminReply>(&limit)) return *bad;
  im::v1::Frame request;
  im::v1::SyncReq* sync = request.mutable_sync_req();
  sync->set_conv_id(conv_id);
  sync->set_after_seq(std::get<uint64_t>(after_seq));
  sync->set_limit(static_cast<uint32_t>(std::get<uint64_t>(limit)));
  const im::v1::Frame response = RunAs(kSystemUid, std::move(request));
  const im::v1::SyncResp& page = response.sync_resp();
  if (auto refusal = RefusalOf(response, page.status())) return *refusal;
  nlohmann::json messages = nlohmann::json::array();
  for (const im::v1::Message& message : page.messages()) messages.push_back(MessageJson(message));
  return AdminReply::Ok({{"conv_id", conv_id},
                         {"messages", std::move(messages)},
                         {"has_more", page.has_more()},
                         {"max_seq", page.max_seq()}});
}

absl::StatusOr<store::Group> AdminOperations::ExistingGroup(const std::string& group_id) {
  if (!store::CheckGroupId(group_id).ok()) {
    return absl::InvalidArgumentError("group_id must be 1-64 bytes of [A-Za-z0-9_-]");
  }
  absl::StatusOr<std::optional<store::Group>> group = deps_.groups->GetGroup(group_id);
  if (!group.ok()) return group.status();
  if (!group->has_value()) return absl::NotFoundError("no such group");
  return std::move(**group);
}

AdminReply AdminOperations::CreateGroup(const Call& call) {
  JsonBody body(call.body, false, {"group_id", "name", "owner", "members"});
  const std::string group_id = body.GroupId("group_id").value_or("");
  // Its length is the group service's to judge: 128 characters, not bytes.
  const std::string name = body.Required("name", body.String("name", 0, SIZE_MAX));
  const std::string owner = body.Required("owner", body.Uid("owner"));
  const std::vector<std::string> members =
      body.Uids("members", 0, kMaxMembersPerCall).value_or(std::vector<std::string>{});
  if (!body.ok()) return Refused(body.status());
  im::v1::Frame request;
  im::v1::GroupCreateReq* create = request.mutable_group_create_req();
  create->set_group_id(group_id);
  create->set_name(name);
  for (const std::string& uid : members) create->add_members(uid);
  const im::v1::Frame response = RunAs(owner, std::move(request));
  const im::v1::GroupCreateResp& created = response.group_create_resp();
  if (auto refusal = RefusalOf(response, created.status())) return *refusal;
  return AdminReply::Ok({{"group_id", created.group_id()}, {"conv_id", created.conv_id()}}, 201);
}

AdminReply AdminOperations::GetGroup(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  absl::StatusOr<store::Group> group = ExistingGroup(group_id);
  if (!group.ok()) return Refused(group.status());
  return AdminReply::Ok({{"group_id", group->group_id},
                         {"name", group->name},
                         {"owner", group->owner},
                         {"created_ms", group->created_ms},
                         {"member_count", group->member_count},
                         {"muted_until_ms", deps_.restrictions->GroupMutedUntil(group_id)}});
}

AdminReply AdminOperations::DismissGroup(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  if (absl::StatusOr<store::Group> group = ExistingGroup(group_id); !group.ok()) {
    return Refused(group.status());
  }
  absl::StatusOr<std::vector<std::string>> members =
      deps_.group_service->Dismiss(SystemCaller(), group_id);
  if (!members.ok()) return Refused(members.status());
  return AdminReply::Ok({{"group_id", group_id}, {"members", members->size()}});
}

AdminReply AdminOperations::ListGroupMembers(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  const auto limit = QueryNumber(call, "limit", 100, 1, 500);
  if (const auto* bad = std::get_if<AdminReply>(&limit)) return *bad;
  const auto page_token = call.query->find("page_token");
  // The token is the last uid of the page before.
  if (page_token != call.query->end() && !page_token->second.empty() &&
      !IsValidUid(page_token->second)) {
    return Invalid("page_token must be a next_page_token this API gave");
  }
  if (absl::StatusOr<store::Group> group = ExistingGroup(group_id); !group.ok()) {
    return Refused(group.status());
  }
  im::v1::Frame request;
  im::v1::GroupMembersReq* list = request.mutable_group_members_req();
  list->set_group_id(group_id);
  if (page_token != call.query->end()) list->set_page_token(page_token->second);
  list->set_limit(static_cast<uint32_t>(std::get<uint64_t>(limit)));
  const im::v1::Frame response = RunAs(kSystemUid, std::move(request));
  const im::v1::GroupMembersResp& page = response.group_members_resp();
  if (auto refusal = RefusalOf(response, page.status())) return *refusal;
  nlohmann::json members = nlohmann::json::array();
  for (const im::v1::GroupMember& member : page.members()) {
    members.push_back({{"uid", member.uid()},
                       {"role", im::v1::GroupRole_Name(member.role())},
                       {"joined_seq", member.joined_seq()}});
  }
  return AdminReply::Ok(
      {{"members", std::move(members)}, {"next_page_token", page.next_page_token()}});
}

AdminReply AdminOperations::AddGroupMembers(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  if (auto bad = CheckGroupId(group_id)) return *bad;
  JsonBody body(call.body, false, {"uids"});
  const std::vector<std::string> uids =
      body.Required("uids", body.Uids("uids", 1, kMaxMembersPerCall));
  if (!body.ok()) return Refused(body.status());
  im::v1::Frame request;
  im::v1::GroupJoinReq* join = request.mutable_group_join_req();
  join->set_group_id(group_id);
  for (const std::string& uid : uids) join->add_uids(uid);
  const im::v1::Frame response = RunAs(kSystemUid, std::move(request));
  const im::v1::GroupJoinResp& joined = response.group_join_resp();
  if (auto refusal = RefusalOf(response, joined.status())) return *refusal;
  return AdminReply::Ok({{"joined_seq", joined.joined_seq()}});
}

AdminReply AdminOperations::RemoveGroupMembers(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  JsonBody body(call.body, false, {"uids"});
  const std::vector<std::string> uids =
      body.Required("uids", body.Uids("uids", 1, kMaxMembersPerCall));
  if (!body.ok()) return Refused(body.status());
  const im::v1::Caller by = SystemCaller();
  std::promise<absl::StatusOr<size_t>> answer;
  std::future<absl::StatusOr<size_t>> removed = answer.get_future();
  deps_.group_service->RemoveMembers(by, group_id, uids, [&answer](absl::StatusOr<size_t> outcome) {
    answer.set_value(std::move(outcome));
  });
  // RemoveMembers always answers (after its notice, which the send path bounds by its deadline).
  const absl::StatusOr<size_t> outcome = removed.get();
  if (!outcome.ok()) return Refused(outcome.status());
  return AdminReply::Ok({{"removed", *outcome}});
}

AdminReply AdminOperations::SetGroupRole(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  const std::string& uid = call.path.at("uid");
  if (auto bad = CheckGroupId(group_id)) return *bad;
  if (auto bad = CheckUid(uid)) return *bad;
  JsonBody body(call.body, false, {"role"});
  const std::string role_name = body.Required("role", body.String("role", 1, 16));
  if (!body.ok()) return Refused(body.status());
  im::v1::GroupRole role;
  if (!im::v1::GroupRole_Parse(role_name, &role) || role == im::v1::GROUP_ROLE_UNSPECIFIED) {
    return Invalid("role must be MEMBER, ADMIN or OWNER");
  }
  im::v1::Frame request;
  im::v1::GroupSetRoleReq* set = request.mutable_group_set_role_req();
  set->set_group_id(group_id);
  set->set_uid(uid);
  set->set_role(role);
  const im::v1::Frame response = RunAs(kSystemUid, std::move(request));
  const im::v1::GroupSetRoleResp& answered = response.group_set_role_resp();
  if (answered.status().code() == im::v1::NOT_MEMBER) {
    return AdminReply::Refused(im::v1::NOT_FOUND, "no such member (or no such group)");
  }
  if (auto refusal = RefusalOf(response, answered.status())) return *refusal;
  return AdminReply::Ok({{"role", role_name}});
}

AdminReply AdminOperations::MuteGroup(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  if (absl::StatusOr<store::Group> group = ExistingGroup(group_id); !group.ok()) {
    return Refused(group.status());
  }
  return PutMute(RestrictionKind::kGroupMute, group_id, call);
}

AdminReply AdminOperations::UnmuteGroup(const Call& call) {
  const std::string& group_id = call.path.at("group_id");
  if (auto bad = CheckGroupId(group_id)) return *bad;
  return LiftMute(RestrictionKind::kGroupMute, group_id);
}

}  // namespace im::logic
