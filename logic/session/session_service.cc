#include "logic/session/session_service.h"

#include <algorithm>
#include <map>

#include "common/logging.h"
#include "fmt/format.h"
#include "logic/conversation/conversation_id.h"
#include "logic/reply_status.h"

namespace im::logic {

SessionService::SessionService(const LogicOptions& options, store::SessionRegistry* sessions,
                               GatewayPusher* pusher, Clock now_ms)
    : options_(options),
      sessions_(sessions),
      pusher_(pusher),
      now_ms_(std::move(now_ms)),
      tokens_(options.token_secret) {}

im::v1::LoginReply SessionService::Login(const im::v1::LoginRequest& request) {
  return std::move(LoginMany({request}).front());
}

std::optional<store::SessionRegistry::Registration> SessionService::Admit(
    const im::v1::LoginRequest& request, int64_t now, im::v1::LoginReply* reply) {
  im::v1::LoginResp* resp = reply->mutable_resp();
  resp->set_server_time_ms(now);
  const std::string& device = request.req().device();
  // The device name becomes part of Redis values and logs: same rules as a uid.
  if (!IsValidUid(device)) {
    SetStatus(resp->mutable_status(), im::v1::INVALID_ARGUMENT,
              "device must be 1-64 printable ASCII characters without ':' or '|'");
    return std::nullopt;
  }
  common::TokenVerdict verdict = tokens_.Verify(request.req().token(), device, now / 1000);
  if (!verdict.ok()) {
    SetStatus(resp->mutable_status(), verdict.code, verdict.detail);
    return std::nullopt;
  }
  if (!IsValidUid(verdict.claims.uid)) {
    SetStatus(resp->mutable_status(), im::v1::TOKEN_INVALID, "the token's uid is not a valid uid");
    return std::nullopt;
  }
  return store::SessionRegistry::Registration{
      verdict.claims.uid, store::Session{device, request.gateway_id(), request.conn_id(), now}};
}

std::vector<im::v1::LoginReply> SessionService::LoginMany(
    const std::vector<im::v1::LoginRequest>& requests) {
  const int64_t now = now_ms_();
  std::vector<im::v1::LoginReply> replies(requests.size());
  std::vector<store::SessionRegistry::Registration> registrations;
  std::vector<size_t> admitted;  // registrations[k] is that of requests[admitted[k]]
  std::map<std::string, size_t> logins_of;
  for (size_t i = 0; i < requests.size(); ++i) {
    if (auto registration = Admit(requests[i], now, &replies[i])) {
      ++logins_of[registration->uid];
      registrations.push_back(std::move(*registration));
      admitted.push_back(i);
    }
  }
  // A user with one login in the batch: every registration in one round trip, then every such
  // user's sessions in one more, for the device cap. A user with several (rare) logs them in one
  // after the other, so that each cap check sees the logins before it, as if they came apart.
  std::vector<store::SessionRegistry::Registration> together;
  std::vector<size_t> together_at;  // index into registrations
  std::vector<size_t> one_by_one;
  for (size_t k = 0; k < registrations.size(); ++k) {
    if (logins_of[registrations[k].uid] == 1) {
      together.push_back(registrations[k]);
      together_at.push_back(k);
    } else {
      one_by_one.push_back(k);
    }
  }
  if (!together.empty()) {
    std::vector<absl::StatusOr<std::optional<store::Session>>> replaced =
        sessions_->RegisterMany(together);
    std::vector<std::string> uids;
    for (size_t j = 0; j < together.size(); ++j) {
      if (replaced[j].ok()) uids.push_back(together[j].uid);
    }
    absl::StatusOr<std::vector<std::vector<store::Session>>> sessions = sessions_->LookupMany(uids);
    for (size_t j = 0, looked_up = 0; j < together.size(); ++j) {
      absl::StatusOr<std::vector<store::Session>> all =
          !replaced[j].ok() ? replaced[j].status()
          : sessions.ok()
              ? absl::StatusOr<std::vector<store::Session>>(std::move((*sessions)[looked_up++]))
              : sessions.status();
      FinishLogin(together[j], std::move(replaced[j]), std::move(all),
                  &replies[admitted[together_at[j]]]);
    }
  }
  for (size_t k : one_by_one) {
    absl::StatusOr<std::optional<store::Session>> replaced =
        sessions_->Register(registrations[k].uid, registrations[k].session);
    absl::StatusOr<std::vector<store::Session>> all =
        replaced.ok() ? sessions_->Lookup(registrations[k].uid) : replaced.status();
    FinishLogin(registrations[k], std::move(replaced), std::move(all), &replies[admitted[k]]);
  }
  return replies;
}

void SessionService::FinishLogin(const store::SessionRegistry::Registration& registration,
                                 absl::StatusOr<std::optional<store::Session>> replaced,
                                 absl::StatusOr<std::vector<store::Session>> all,
                                 im::v1::LoginReply* reply) {
  const auto& [uid, session] = registration;
  im::v1::LoginResp* resp = reply->mutable_resp();
  if (!replaced.ok()) {
    SetStatus(resp->mutable_status(), replaced.status());
    return;
  }
  if (*replaced) {
    pusher_->Kick(PushTarget{uid, **replaced}, im::v1::Kick::LOGGED_IN_ELSEWHERE,
                  "this device logged in on another connection");
  }
  if (!EnforceDeviceCap(uid, session, std::move(all))) {
    SetStatus(
        resp->mutable_status(), im::v1::TOO_MANY_DEVICES,
        fmt::format("at most {} devices may be logged in at once", options_.max_devices_per_user));
    return;
  }
  SetStatus(resp->mutable_status(), im::v1::OK);
  resp->set_uid(uid);
  resp->set_session_id(fmt::format("{}-{}", session.gateway_id, session.conn_id));
  reply->set_device(session.device);
}

bool SessionService::EnforceDeviceCap(const std::string& uid, const store::Session& current,
                                      absl::StatusOr<std::vector<store::Session>> all) {
  if (!all.ok()) {
    // The login itself is registered; the cap is enforced at the next login.
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "device cap of {} not checked: {}", uid,
                        all.status().ToString());
    return true;
  }
  if (all->size() <= options_.max_devices_per_user) return true;
  if (options_.device_limit_policy == DeviceLimitPolicy::kRefuse) {
    (void)sessions_->Unregister(uid, current.device, current.gateway_id, current.conn_id);
    return false;
  }
  std::vector<store::Session> others;
  for (store::Session& session : *all) {
    if (!session.SameConnection(current)) others.push_back(std::move(session));
  }
  std::sort(others.begin(), others.end(), [](const store::Session& a, const store::Session& b) {
    return a.login_ms < b.login_ms;
  });
  const size_t excess = all->size() - options_.max_devices_per_user;
  for (size_t i = 0; i < excess && i < others.size(); ++i) {
    const store::Session& oldest = others[i];
    (void)sessions_->Unregister(uid, oldest.device, oldest.gateway_id, oldest.conn_id);
    pusher_->Kick(PushTarget{uid, oldest}, im::v1::Kick::TOO_MANY_DEVICES,
                  "too many devices logged in; this one was the least recent");
  }
  return true;
}

im::v1::DisconnectReply SessionService::Disconnect(const im::v1::DisconnectRequest& request) {
  im::v1::DisconnectReply reply;
  const im::v1::Caller& caller = request.caller();
  absl::StatusOr<bool> removed =
      sessions_->Unregister(caller.uid(), caller.device(), caller.gateway_id(), caller.conn_id());
  if (!removed.ok()) {
    // The session expires by itself; a failed removal only delays that.
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "disconnect of {}/{} not recorded: {}", caller.uid(),
                        caller.device(), removed.status().ToString());
  }
  reply.set_removed(removed.ok() && *removed);
  return reply;
}

im::v1::DisconnectManyReply SessionService::DisconnectMany(
    const im::v1::DisconnectManyRequest& request) {
  im::v1::DisconnectManyReply reply;
  // A loop's batch comes from one gateway; should one mix gateways, each gets its own call.
  std::map<std::string, std::vector<store::SessionRef>> by_gateway;
  for (const im::v1::DisconnectRequest& disconnect : request.disconnects()) {
    const im::v1::Caller& caller = disconnect.caller();
    by_gateway[caller.gateway_id()].push_back(
        store::SessionRef{caller.uid(), caller.device(), caller.conn_id()});
  }
  for (const auto& [gateway_id, refs] : by_gateway) {
    absl::StatusOr<size_t> removed = sessions_->UnregisterMany(gateway_id, refs);
    if (!removed.ok()) {
      // The sessions expire by themselves; a failed removal only delays that.
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "{} disconnects from {} not recorded: {}",
                          refs.size(), gateway_id, removed.status().ToString());
      continue;
    }
    reply.set_removed(reply.removed() + static_cast<uint32_t>(*removed));
  }
  return reply;
}

im::v1::RefreshSessionsReply SessionService::RefreshSessions(
    const im::v1::RefreshSessionsRequest& request) {
  im::v1::RefreshSessionsReply reply;
  std::vector<store::SessionRef> refs;
  refs.reserve(request.sessions_size());
  for (const im::v1::SessionRef& ref : request.sessions()) {
    refs.push_back(store::SessionRef{ref.uid(), ref.device(), ref.conn_id()});
  }
  absl::StatusOr<std::vector<uint64_t>> stale = sessions_->Refresh(request.gateway_id(), refs);
  if (!stale.ok()) {
    // Nothing is reported stale: closing healthy connections because Redis hiccuped would be
    // worse than letting them refresh next time.
    IM_LOG_RATE_LIMITED(spdlog::level::warn, "session refresh from {} failed: {}",
                        request.gateway_id(), stale.status().ToString());
    return reply;
  }
  for (uint64_t conn_id : *stale) reply.add_stale_conn_ids(conn_id);
  return reply;
}

absl::StatusOr<im::v1::RegisterGatewayReply> SessionService::RegisterGateway(
    const im::v1::RegisterGatewayRequest& request) {
  if (request.gateway_id().empty() || request.gateway_id().find('|') != std::string::npos ||
      request.push_address().empty()) {
    return absl::InvalidArgumentError("gateway_id and push_address are required");
  }
  if (absl::Status status = pusher_->RegisterGateway(request.gateway_id(), request.push_address());
      !status.ok()) {
    return status;
  }
  im::v1::RegisterGatewayReply reply;
  reply.set_ttl_ms(options_.gateway_ttl_sec * 1000);
  return reply;
}

}  // namespace im::logic
