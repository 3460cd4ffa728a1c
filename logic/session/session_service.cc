#include "logic/session/session_service.h"

#include <algorithm>
#include <map>
#include <memory>
#include <string_view>

#include "common/logging.h"
#include "fmt/format.h"
#include "logic/conversation/conversation_id.h"
#include "logic/reply_status.h"

namespace im::logic {
namespace {

constexpr size_t kMaxPlatformLength = 32;

// A platform goes into Redis values and presence answers: short, printable, no separator.
bool IsValidPlatform(std::string_view platform) {
  return platform.size() <= kMaxPlatformLength &&
         std::all_of(platform.begin(), platform.end(),
                     [](char c) { return c >= ' ' && c <= '~' && c != '|'; });
}

}  // namespace

SessionService::SessionService(const LogicOptions& options, store::SessionRegistry* sessions,
                               Pusher* pusher, Clock now_ms, DevicesChanged devices_changed,
                               const Restrictions* restrictions)
    : options_(options),
      sessions_(sessions),
      pusher_(pusher),
      now_ms_(std::move(now_ms)),
      devices_changed_(std::move(devices_changed)),
      restrictions_(restrictions),
      tokens_(options.token_secret),
      resume_tokens_(options.token_secret, int64_t{options.resume_window_sec} * 1000) {}

im::v1::LoginReply SessionService::Login(const im::v1::LoginRequest& request) {
  return std::move(LoginMany({request}).front());
}

std::optional<SessionService::Registration> SessionService::Admit(
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
  const std::string& platform = request.req().platform();
  if (!IsValidPlatform(platform)) {
    SetStatus(resp->mutable_status(), im::v1::INVALID_ARGUMENT,
              "platform must be at most 32 printable ASCII characters without '|'");
    return std::nullopt;
  }
  common::TokenVerdict verdict = tokens_.Verify(request.req().token(), device, now / 1000);
  if (!verdict.ok()) {
    SetStatus(resp->mutable_status(), verdict.code, verdict.detail);
    return std::nullopt;
  }
  if (!IsValidUid(verdict.claims.uid) || verdict.claims.uid == kSystemUid) {
    SetStatus(resp->mutable_status(), im::v1::TOKEN_INVALID,
              "the token's uid is not a valid uid (or is the system's)");
    return std::nullopt;
  }
  if (Revoked(verdict.claims)) {
    SetStatus(resp->mutable_status(), im::v1::TOKEN_REVOKED,
              "the user's tokens issued before a time were revoked: get a new one");
    return std::nullopt;
  }
  return Registration{verdict.claims.uid, store::Session{device, request.gateway_id(),
                                                         request.conn_id(), now, platform}};
}

bool SessionService::Revoked(const common::TokenClaims& claims) const {
  if (restrictions_ == nullptr) return false;
  const int64_t revoked_before_ms = restrictions_->TokensRevokedBefore(claims.uid);
  return revoked_before_ms != 0 && claims.iat_unix_sec * 1000 < revoked_before_ms;
}

absl::StatusOr<size_t> SessionService::Kick(const std::string& uid, const std::string& device,
                                            im::v1::Kick::Reason reason,
                                            const std::string& message) {
  absl::StatusOr<std::vector<store::Session>> sessions = sessions_->Lookup(uid);
  if (!sessions.ok()) return sessions.status();
  size_t kicked = 0;
  for (const store::Session& session : *sessions) {
    if (!device.empty() && session.device != device) continue;
    pusher_->Kick(PushTarget{uid, session}, reason, message);
    ++kicked;
  }
  return kicked;
}

SessionService::AdmittedLogins SessionService::AdmitAll(
    const std::vector<im::v1::LoginRequest>& requests) {
  const int64_t now = now_ms_();
  AdmittedLogins logins;
  logins.replies.resize(requests.size());
  for (size_t i = 0; i < requests.size(); ++i) {
    if (auto registration = Admit(requests[i], now, &logins.replies[i])) {
      logins.registrations.push_back(std::move(*registration));
      logins.admitted.push_back(i);
    }
  }
  return logins;
}

std::vector<im::v1::LoginReply> SessionService::LoginMany(
    const std::vector<im::v1::LoginRequest>& requests) {
  AdmittedLogins logins = AdmitAll(requests);
  std::vector<absl::StatusOr<Registered>> outcomes =
      sessions_->RegisterAndList(logins.registrations);
  for (const auto& [uid, session] : FinishAll(logins, std::move(outcomes))) {
    (void)sessions_->Unregister(uid, session.device, session.gateway_id, session.conn_id);
  }
  ReportLogins(logins);
  return std::move(logins.replies);
}

void SessionService::LoginManyOnLoop(const std::vector<im::v1::LoginRequest>& requests,
                                     store::AsyncSessionRegistry* sessions, LoginsDone done) {
  auto logins = std::make_shared<AdmittedLogins>(AdmitAll(requests));
  const std::vector<Registration>& registrations = logins->registrations;
  sessions->RegisterAndList(
      registrations, [this, sessions, logins, done = std::move(done)](
                         std::vector<absl::StatusOr<Registered>> outcomes) mutable {
        std::vector<Registration> evicted = FinishAll(*logins, std::move(outcomes));
        if (!evicted.empty()) {
          sessions->UnregisterAll(evicted, [count = evicted.size()](absl::Status status) {
            // Those sessions expire by themselves; their kicks closed the connections already.
            if (!status.ok()) {
              IM_LOG_RATE_LIMITED(spdlog::level::warn,
                                  "{} sessions over the device cap not "
                                  "unregistered: {}",
                                  count, status.ToString());
            }
          });
        }
        ReportLogins(*logins);
        std::move(done)(std::move(logins->replies));
      });
}

void SessionService::ReportLogins(const AdmittedLogins& logins) {
  std::vector<ChangedDevice> devices;
  for (size_t k = 0; k < logins.registrations.size(); ++k) {
    if (logins.replies[logins.admitted[k]].resp().status().code() == im::v1::OK) {
      const auto& [uid, session] = logins.registrations[k];
      devices.push_back(ChangedDevice{uid, session.device, session.platform});
    }
  }
  ReportChanged(devices, DeviceChange::kLoggedIn);
}

std::vector<std::string> UidsOf(const std::vector<ChangedDevice>& devices) {
  std::vector<std::string> uids;
  uids.reserve(devices.size());
  for (const ChangedDevice& device : devices) uids.push_back(device.uid);
  std::sort(uids.begin(), uids.end());
  uids.erase(std::unique(uids.begin(), uids.end()), uids.end());
  return uids;
}

void SessionService::ReportChanged(const std::vector<ChangedDevice>& devices, DeviceChange change) {
  if (devices_changed_ && !devices.empty()) devices_changed_(devices, change);
}

std::vector<SessionService::Registration> SessionService::FinishAll(
    AdmittedLogins& logins, std::vector<absl::StatusOr<Registered>> outcomes) {
  std::vector<Registration> evicted;
  for (size_t k = 0; k < logins.registrations.size(); ++k) {
    FinishLogin(logins.registrations[k], std::move(outcomes[k]),
                &logins.replies[logins.admitted[k]], &evicted);
  }
  return evicted;
}

void SessionService::FinishLogin(const Registration& registration,
                                 absl::StatusOr<Registered> outcome, im::v1::LoginReply* reply,
                                 std::vector<Registration>* evicted) {
  const auto& [uid, session] = registration;
  im::v1::LoginResp* resp = reply->mutable_resp();
  if (!outcome.ok()) {
    SetStatus(resp->mutable_status(), outcome.status());
    return;
  }
  if (outcome->replaced) {
    pusher_->Kick(PushTarget{uid, *outcome->replaced}, im::v1::Kick::LOGGED_IN_ELSEWHERE,
                  "this device logged in on another connection");
  }
  if (!EnforceDeviceCap(uid, session, std::move(outcome->all), evicted)) {
    SetStatus(
        resp->mutable_status(), im::v1::TOO_MANY_DEVICES,
        fmt::format("at most {} devices may be logged in at once", options_.max_devices_per_user));
    return;
  }
  SetStatus(resp->mutable_status(), im::v1::OK);
  resp->set_uid(uid);
  resp->set_session_id(fmt::format("{}-{}", session.gateway_id, session.conn_id));
  // The baseline is now: this connection's client reconciles every conversation after login.
  const int64_t now_ms = now_ms_();
  resp->set_resume_token(resume_tokens_.Issue(uid, session.device, now_ms, now_ms));
  resp->set_resume_window_sec(options_.resume_window_sec);
  reply->set_device(session.device);
}

bool SessionService::EnforceDeviceCap(const std::string& uid, const store::Session& current,
                                      std::vector<store::Session> all,
                                      std::vector<Registration>* evicted) {
  // A user's later login in the same batch sees the sessions an earlier one takes out: each is
  // taken out (and kicked) once.
  auto already_evicted = [&](const store::Session& session) {
    return std::any_of(evicted->begin(), evicted->end(), [&](const Registration& out) {
      return out.uid == uid && out.session.device == session.device &&
             out.session.SameConnection(session);
    });
  };
  all.erase(std::remove_if(all.begin(), all.end(), already_evicted), all.end());
  if (all.size() <= options_.max_devices_per_user) return true;
  if (options_.device_limit_policy == DeviceLimitPolicy::kRefuse) {
    evicted->push_back(Registration{uid, current});
    return false;
  }
  const size_t excess = all.size() - options_.max_devices_per_user;
  std::vector<store::Session> others;
  for (store::Session& session : all) {
    if (!session.SameConnection(current)) others.push_back(std::move(session));
  }
  std::sort(others.begin(), others.end(), [](const store::Session& a, const store::Session& b) {
    return a.login_ms < b.login_ms;
  });
  for (size_t i = 0; i < excess && i < others.size(); ++i) {
    pusher_->Kick(PushTarget{uid, others[i]}, im::v1::Kick::TOO_MANY_DEVICES,
                  "too many devices logged in; this one was the least recent");
    evicted->push_back(Registration{uid, std::move(others[i])});
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
  ReportChanged({ChangedDevice{caller.uid(), caller.device(), ""}}, DeviceChange::kLeft);
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
  std::vector<ChangedDevice> devices;
  for (const auto& [gateway_id, refs] : by_gateway) {
    for (const store::SessionRef& ref : refs)
      devices.push_back(ChangedDevice{ref.uid, ref.device, ""});
  }
  ReportChanged(devices, DeviceChange::kLeft);
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
