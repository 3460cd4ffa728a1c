#pragma once

#include <functional>
#include <optional>
#include <vector>

#include "common/clock.h"
#include "common/token.h"
#include "im/v1/logic.pb.h"
#include "logic/delivery/gateway_pusher.h"
#include "logic/logic_options.h"
#include "store/session_registry.h"

namespace im::logic {

// Login, Disconnect, session refresh and gateway registration (DESIGN.md section 6).
// Every method blocks on the stores, so it runs on the store executor; any number of threads may
// call it at once.
class SessionService {
 public:
  using Clock = common::MillisClock;  // Unix milliseconds

  SessionService(const LogicOptions& options, store::SessionRegistry* sessions,
                 GatewayPusher* pusher, Clock now_ms);

  // Verifies the token, registers the session, kicks an older connection of the same device and,
  // beyond the device cap, the least recently logged-in device (or refuses, per policy).
  im::v1::LoginReply Login(const im::v1::LoginRequest& request);
  // Login for each request (replies[i] answers requests[i]): the batch's registrations in one
  // session registry call and the device caps checked with one lookup of every user.
  std::vector<im::v1::LoginReply> LoginMany(const std::vector<im::v1::LoginRequest>& requests);
  im::v1::DisconnectReply Disconnect(const im::v1::DisconnectRequest& request);
  // Every Disconnect of the batch, one session registry call for them all.
  im::v1::DisconnectManyReply DisconnectMany(const im::v1::DisconnectManyRequest& request);
  im::v1::RefreshSessionsReply RefreshSessions(const im::v1::RefreshSessionsRequest& request);
  // Fails (gRPC status) only when the directory cannot be written, so the gateway retries.
  absl::StatusOr<im::v1::RegisterGatewayReply> RegisterGateway(
      const im::v1::RegisterGatewayRequest& request);

 private:
  // Checks the device name and the token; the registration to make, or nullopt with the refusal
  // in `reply`.
  std::optional<store::SessionRegistry::Registration> Admit(const im::v1::LoginRequest& request,
                                                            int64_t now, im::v1::LoginReply* reply);
  // Answers a login once registered (`replaced`: the session it replaced, to kick) and its
  // user's sessions looked up (`all`, for the device cap).
  void FinishLogin(const store::SessionRegistry::Registration& registration,
                   absl::StatusOr<std::optional<store::Session>> replaced,
                   absl::StatusOr<std::vector<store::Session>> all, im::v1::LoginReply* reply);
  // Applies the device cap after `uid` registered `current`, given `all` its sessions (as looked
  // up after the registration); false when the login is refused.
  bool EnforceDeviceCap(const std::string& uid, const store::Session& current,
                        absl::StatusOr<std::vector<store::Session>> all);

  const LogicOptions& options_;
  store::SessionRegistry* sessions_;
  GatewayPusher* pusher_;
  Clock now_ms_;
  common::TokenVerifier tokens_;
};

}  // namespace im::logic
