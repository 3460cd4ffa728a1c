#pragma once

#include <atomic>
#include <string>
#include <vector>

#include "common/clock.h"
#include "im/v1/logic.pb.h"
#include "logic/admin/admin_api.h"
#include "logic/admin/json_body.h"
#include "logic/admin/restrictions.h"
#include "logic/group/group_service.h"
#include "logic/ingress/request_dispatcher.h"
#include "logic/logic_options.h"
#include "logic/session/session_service.h"
#include "store/group_store.h"
#include "store/session_registry.h"

namespace im::logic {

// What the admin API's operations act on; every pointer outlives them.
struct AdminDependencies {
  const LogicOptions* options;
  RequestDispatcher* dispatcher;  // client requests made as a user or the system
  SessionService* sessions;       // kicks
  store::SessionRegistry* registry;
  store::GroupStore* groups;
  GroupService* group_service;  // dismissal
  Restrictions* restrictions;
  common::MillisClock now_ms;
};

// The admin API's operations (docs/openapi/admin-api.yaml, docs/admin-api.md). What a client can
// do too (send, history, group changes) runs as a client request of the acting user or of the
// system (Caller.admin) through the RequestDispatcher, so it takes the same path, limits and
// rules; the rest (sessions, kicks, mutes, revocations, dismissal) calls the services. Handlers
// run on the admin API's HTTP threads and may block.
class AdminOperations {
 public:
  explicit AdminOperations(AdminDependencies deps) : deps_(std::move(deps)) {}

  std::vector<AdminApi::Route> Routes();

 private:
  AdminReply GetUserState(const AdminApi::Call& call);
  AdminReply QueryUserStates(const AdminApi::Call& call);
  AdminReply KickUser(const AdminApi::Call& call);
  AdminReply MuteUser(const AdminApi::Call& call);
  AdminReply UnmuteUser(const AdminApi::Call& call);
  AdminReply RevokeTokens(const AdminApi::Call& call);
  AdminReply SendMessage(const AdminApi::Call& call);
  AdminReply ReadHistory(const AdminApi::Call& call);
  AdminReply CreateGroup(const AdminApi::Call& call);
  AdminReply GetGroup(const AdminApi::Call& call);
  AdminReply DismissGroup(const AdminApi::Call& call);
  AdminReply ListGroupMembers(const AdminApi::Call& call);
  AdminReply AddGroupMembers(const AdminApi::Call& call);
  AdminReply RemoveGroupMembers(const AdminApi::Call& call);
  AdminReply SetGroupRole(const AdminApi::Call& call);
  AdminReply MuteGroup(const AdminApi::Call& call);
  AdminReply UnmuteGroup(const AdminApi::Call& call);

  // Runs `request` as a client request of `uid` (kSystemUid: the system) and returns the
  // response frame; one holding `error` when it was not answered within admin_api.timeout_ms.
  im::v1::Frame RunAs(const std::string& uid, im::v1::Frame request);
  // The state of each of `uids` (GetUserState's body), looked up in one round trip.
  absl::StatusOr<std::vector<nlohmann::json>> UserStates(const std::vector<std::string>& uids);
  // The group, or the refusal: 404 when there is none, 400 for a malformed id.
  absl::StatusOr<store::Group> ExistingGroup(const std::string& group_id);
  AdminReply PutMute(store::RestrictionKind kind, const std::string& subject,
                     const AdminApi::Call& call);
  AdminReply LiftMute(store::RestrictionKind kind, const std::string& subject);

  AdminDependencies deps_;
  std::atomic<uint64_t> calls_{0};  // numbers request ids
};

}  // namespace im::logic
