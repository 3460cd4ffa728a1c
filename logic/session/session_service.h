#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/token.h"
#include "im/v1/logic.pb.h"
#include "logic/admin/restrictions.h"
#include "logic/delivery/pusher.h"
#include "logic/logic_options.h"
#include "logic/session/resume_tokens.h"
#include "store/session_registry.h"

namespace im::logic {

// What happened to a user's devices: one logged in, or one left (disconnected, or taken out).
enum class DeviceChange { kLoggedIn, kLeft };
// The device that changed (platform as it said at login; empty for one that left).
struct ChangedDevice {
  std::string uid;
  std::string device;
  std::string platform;
};
// The users of `devices`, each once.
std::vector<std::string> UidsOf(const std::vector<ChangedDevice>& devices);

// Login, Disconnect, session refresh and gateway registration (DESIGN.md section 6).
// Every method but LoginManyOnLoop blocks on the stores, so it runs on an executor; any number of
// threads may call it at once.
class SessionService {
 public:
  using Clock = common::MillisClock;  // Unix milliseconds
  using LoginsDone = absl::AnyInvocable<void(std::vector<im::v1::LoginReply>) &&>;
  // Told the devices that changed, and how: presence and webhooks. Must not block.
  using DevicesChanged =
      std::function<void(const std::vector<ChangedDevice>& devices, DeviceChange change)>;

  // `restrictions` (null: none) refuses logins with revoked tokens.
  SessionService(const LogicOptions& options, store::SessionRegistry* sessions, Pusher* pusher,
                 Clock now_ms, DevicesChanged devices_changed = {},
                 const Restrictions* restrictions = nullptr);

  // Verifies the token, registers the session, kicks an older connection of the same device and,
  // beyond the device cap, the least recently logged-in device (or refuses, per policy).
  im::v1::LoginReply Login(const im::v1::LoginRequest& request);
  // Login for each request (replies[i] answers requests[i]): the batch's registrations, and the
  // sessions each user has after its own, in one session registry call.
  std::vector<im::v1::LoginReply> LoginMany(const std::vector<im::v1::LoginRequest>& requests);
  // LoginMany on a logic loop, registering through the loop's `sessions` without blocking; `done`
  // runs on the loop with the replies once the registrations are answered.
  void LoginManyOnLoop(const std::vector<im::v1::LoginRequest>& requests,
                       store::AsyncSessionRegistry* sessions, LoginsDone done);
  im::v1::DisconnectReply Disconnect(const im::v1::DisconnectRequest& request);
  // Every Disconnect of the batch, one session registry call for them all.
  im::v1::DisconnectManyReply DisconnectMany(const im::v1::DisconnectManyRequest& request);
  im::v1::RefreshSessionsReply RefreshSessions(const im::v1::RefreshSessionsRequest& request);
  // Tells uid's connections (only `device`'s, unless empty) to close with Kick{reason, message};
  // returns how many. Blocks on the session registry. The gateways' disconnects remove the
  // sessions.
  absl::StatusOr<size_t> Kick(const std::string& uid, const std::string& device,
                              im::v1::Kick::Reason reason, const std::string& message);
  // Fails (gRPC status) only when the directory cannot be written, so the gateway retries.
  absl::StatusOr<im::v1::RegisterGatewayReply> RegisterGateway(
      const im::v1::RegisterGatewayRequest& request);

 private:
  using Registration = store::SessionRegistry::Registration;
  using Registered = store::SessionRegistry::Registered;
  // A batch of logins once their tokens are checked: registrations[k] is that of the request
  // answered by replies[admitted[k]]; the others' replies already hold their refusals.
  struct AdmittedLogins {
    std::vector<im::v1::LoginReply> replies;
    std::vector<Registration> registrations;
    std::vector<size_t> admitted;
  };
  AdmittedLogins AdmitAll(const std::vector<im::v1::LoginRequest>& requests);
  // Whether the token was issued before a revocation of its user's tokens.
  bool Revoked(const common::TokenClaims& claims) const;
  // Checks the device name and the token; the registration to make, or nullopt with the refusal
  // in `reply`.
  std::optional<Registration> Admit(const im::v1::LoginRequest& request, int64_t now,
                                    im::v1::LoginReply* reply);
  // Answers every admitted login of `logins` from its registration's outcome (outcomes[k] is that
  // of registrations[k]), kicking what each replaced; returns the sessions the device cap takes
  // out (to unregister; each once).
  std::vector<Registration> FinishAll(AdmittedLogins& logins,
                                      std::vector<absl::StatusOr<Registered>> outcomes);
  // Tells devices_changed_ of the devices in `logins` that logged in, or of `devices`.
  void ReportLogins(const AdmittedLogins& logins);
  void ReportChanged(const std::vector<ChangedDevice>& devices, DeviceChange change);
  // One login of FinishAll; the sessions its device cap takes out are added to `evicted`.
  void FinishLogin(const Registration& registration, absl::StatusOr<Registered> outcome,
                   im::v1::LoginReply* reply, std::vector<Registration>* evicted);
  // Applies the device cap after `uid` registered `current`, given `all` its sessions right after
  // that; false when the login is refused. What it takes out is added to `evicted`.
  bool EnforceDeviceCap(const std::string& uid, const store::Session& current,
                        std::vector<store::Session> all, std::vector<Registration>* evicted);

  const LogicOptions& options_;
  store::SessionRegistry* sessions_;
  Pusher* pusher_;
  Clock now_ms_;
  DevicesChanged devices_changed_;
  const Restrictions* restrictions_;
  common::TokenVerifier tokens_;
  const ResumeTokens resume_tokens_;
};

}  // namespace im::logic
