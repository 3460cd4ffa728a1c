#include "store/redis_session_registry.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace im::store {
namespace {

// KEYS[1] hash; ARGV device, value, ttl. Returns {the value it replaced or nil, the whole hash
// after}: a login's registration and its device-cap check in one command.
constexpr char kRegisterScript[] = R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return {old, redis.call('HGETALL', KEYS[1])})lua";

// KEYS[1] hash; ARGV device, "<gateway>|<conn>|". Deletes the field only if it still points there.
constexpr char kUnregisterScript[] = R"lua(
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2]) == ARGV[2] then
  redis.call('HDEL', KEYS[1], ARGV[1])
  return 1
end
return 0)lua";

// KEYS[1] hash; ARGV device, "<gateway>|<conn>|", ttl. Re-arms expiry only if still there.
constexpr char kRefreshScript[] = R"lua(
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and string.sub(v, 1, #ARGV[2]) == ARGV[2] then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  return 1
end
return 0)lua";

std::string ConnectionPrefix(std::string_view gateway_id, uint64_t conn_id) {
  return fmt::format("{}|{}|", gateway_id, conn_id);
}

std::string EncodeSession(const Session& session) {
  return fmt::format("{}|{}|{}|{}", session.gateway_id, session.conn_id, session.login_ms,
                     session.platform);
}

template <typename Int>
bool ParseInt(std::string_view text, Int* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

// "<gateway_id>|<conn_id>|<login_ms>|<platform>" (sessions written before platforms were kept
// end at login_ms); neither the gateway id nor the platform holds '|' (checked at the gateway's
// start-up, and at login).
std::optional<Session> DecodeSession(std::string_view device, std::string_view value) {
  const size_t first = value.find('|');
  const size_t second = first == std::string_view::npos ? first : value.find('|', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  const size_t third = value.find('|', second + 1);
  Session session;
  if (!ParseInt(value.substr(first + 1, second - first - 1), &session.conn_id) ||
      !ParseInt(
          value.substr(second + 1, third == std::string_view::npos ? third : third - second - 1),
          &session.login_ms)) {
    return std::nullopt;
  }
  session.device = std::string(device);
  session.gateway_id = std::string(value.substr(0, first));
  if (third != std::string_view::npos) session.platform = std::string(value.substr(third + 1));
  return session;
}

using Reply = RedisConnection::Reply;
constexpr auto TextOf = &RedisConnection::TextOf;

std::vector<RedisConnection::Args> LookupCommands(const std::vector<std::string>& uids) {
  std::vector<RedisConnection::Args> commands;
  commands.reserve(uids.size());
  for (const std::string& uid : uids) {
    commands.push_back({"HGETALL", RedisSessionRegistry::KeyOf(uid)});
  }
  return commands;
}

// The sessions in an HGETALL reply of a user's hash, in device order.
std::vector<Session> SessionsOfHash(const redisReply* reply) {
  std::vector<Session> sessions;
  for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i + 1 < reply->elements; i += 2) {
    // A value we cannot read is skipped rather than failing the user's every lookup.
    if (auto session = DecodeSession(TextOf(reply->element[i]), TextOf(reply->element[i + 1]))) {
      sessions.push_back(std::move(*session));
    }
  }
  std::sort(sessions.begin(), sessions.end(),
            [](const Session& a, const Session& b) { return a.device < b.device; });
  return sessions;
}

std::vector<std::string> RegisterCommand(const std::string& sha, int64_t ttl_ms,
                                         const std::string& uid, const Session& session) {
  return {"EVALSHA",
          sha,
          "1",
          RedisSessionRegistry::KeyOf(uid),
          session.device,
          EncodeSession(session),
          std::to_string(ttl_ms)};
}

std::vector<std::vector<std::string>> RegisterCommands(
    const std::string& sha, int64_t ttl_ms,
    const std::vector<SessionRegistry::Registration>& registrations) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(registrations.size());
  for (const auto& [uid, session] : registrations) {
    commands.push_back(RegisterCommand(sha, ttl_ms, uid, session));
  }
  return commands;
}

std::vector<std::vector<std::string>> UnregisterCommands(
    const std::string& sha, const std::vector<SessionRegistry::Registration>& sessions) {
  std::vector<std::vector<std::string>> commands;
  commands.reserve(sessions.size());
  for (const auto& [uid, session] : sessions) {
    commands.push_back({"EVALSHA", sha, "1", RedisSessionRegistry::KeyOf(uid), session.device,
                        ConnectionPrefix(session.gateway_id, session.conn_id)});
  }
  return commands;
}

// What the register script's `reply` says of `session`'s registration. The replaced session is
// none when it was this very connection's.
absl::StatusOr<SessionRegistry::Registered> RegisteredOf(const redisReply* reply,
                                                         const Session& session) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
    return absl::InternalError("unexpected reply to the session register script");
  }
  SessionRegistry::Registered registered;
  if (reply->element[0]->type == REDIS_REPLY_STRING) {
    registered.replaced = DecodeSession(session.device, TextOf(reply->element[0]));
    if (registered.replaced && registered.replaced->SameConnection(session)) {
      registered.replaced.reset();
    }
  }
  registered.all = SessionsOfHash(reply->element[1]);
  return registered;
}

}  // namespace

RedisSessionRegistry::RedisSessionRegistry(std::shared_ptr<RedisConnection> redis, int64_t ttl_ms)
    : ttl_ms_(ttl_ms),
      redis_(std::move(redis)),
      register_sha_(redis_->LoadScript(kRegisterScript)),
      unregister_sha_(redis_->LoadScript(kUnregisterScript)),
      refresh_sha_(redis_->LoadScript(kRefreshScript)) {}

RedisSessionRegistry::~RedisSessionRegistry() = default;

std::string RedisSessionRegistry::KeyOf(std::string_view uid) {
  return fmt::format("im:sess:{}", uid);
}

absl::StatusOr<std::optional<Session>> RedisSessionRegistry::Register(std::string_view uid,
                                                                      const Session& session) {
  IM_ASSIGN_OR_RETURN(Reply reply, redis_->Command(RegisterCommand(register_sha_, ttl_ms_,
                                                                   std::string(uid), session)));
  IM_ASSIGN_OR_RETURN(Registered registered, RegisteredOf(reply.get(), session));
  return std::move(registered.replaced);
}

std::vector<absl::StatusOr<SessionRegistry::Registered>> RedisSessionRegistry::RegisterAndList(
    const std::vector<Registration>& registrations) {
  if (registrations.empty()) return {};
  absl::StatusOr<std::vector<Reply>> replies =
      redis_->Pipeline(RegisterCommands(register_sha_, ttl_ms_, registrations));
  if (!replies.ok()) {
    return std::vector<absl::StatusOr<Registered>>(registrations.size(), replies.status());
  }
  std::vector<absl::StatusOr<Registered>> outcomes;
  outcomes.reserve(registrations.size());
  for (size_t i = 0; i < registrations.size(); ++i) {
    outcomes.push_back(RegisteredOf((*replies)[i].get(), registrations[i].session));
  }
  return outcomes;
}

absl::StatusOr<bool> RedisSessionRegistry::Unregister(std::string_view uid, std::string_view device,
                                                      std::string_view gateway_id,
                                                      uint64_t conn_id) {
  absl::StatusOr<Reply> reply =
      redis_->Command({"EVALSHA", unregister_sha_, "1", KeyOf(uid), std::string(device),
                       ConnectionPrefix(gateway_id, conn_id)});
  if (!reply.ok()) return reply.status();
  return (*reply)->type == REDIS_REPLY_INTEGER && (*reply)->integer == 1;
}

absl::StatusOr<std::vector<Session>> RedisSessionRegistry::Lookup(std::string_view uid) {
  IM_ASSIGN_OR_RETURN(std::vector<std::vector<Session>> sessions, LookupMany({std::string(uid)}));
  return std::move(sessions.front());
}

absl::StatusOr<size_t> RedisSessionRegistry::UnregisterMany(
    std::string_view gateway_id, const std::vector<SessionRef>& sessions) {
  if (sessions.empty()) return 0;
  std::vector<RedisConnection::Args> commands;
  commands.reserve(sessions.size());
  for (const SessionRef& ref : sessions) {
    commands.push_back({"EVALSHA", unregister_sha_, "1", KeyOf(ref.uid), ref.device,
                        ConnectionPrefix(gateway_id, ref.conn_id)});
  }
  IM_ASSIGN_OR_RETURN(std::vector<Reply> replies, redis_->Pipeline(commands));
  size_t removed = 0;
  for (const Reply& reply : replies) {
    if (reply->type == REDIS_REPLY_INTEGER && reply->integer == 1) ++removed;
  }
  return removed;
}

absl::StatusOr<std::vector<std::vector<Session>>> RedisSessionRegistry::LookupMany(
    const std::vector<std::string>& uids) {
  IM_ASSIGN_OR_RETURN(std::vector<Reply> replies, redis_->Pipeline(LookupCommands(uids)));
  std::vector<std::vector<Session>> all;
  all.reserve(uids.size());
  for (const Reply& reply : replies) all.push_back(SessionsOfHash(reply.get()));
  return all;
}

absl::StatusOr<std::vector<int64_t>> RedisSessionRegistry::LapseInMs(
    const std::vector<std::string>& uids) {
  std::vector<RedisConnection::Args> commands;
  commands.reserve(uids.size());
  for (const std::string& uid : uids) commands.push_back({"PTTL", KeyOf(uid)});
  IM_ASSIGN_OR_RETURN(std::vector<Reply> replies, redis_->Pipeline(commands));
  std::vector<int64_t> lapse_in_ms;
  lapse_in_ms.reserve(uids.size());
  for (const Reply& reply : replies) {
    // -2: no hash (no sessions); -1 (no expiry) is never set by this registry.
    const int64_t pttl = reply->type == REDIS_REPLY_INTEGER ? reply->integer : -2;
    lapse_in_ms.push_back(pttl == -1 ? ttl_ms_ : std::max<int64_t>(pttl, 0));
  }
  return lapse_in_ms;
}

absl::StatusOr<std::vector<uint64_t>> RedisSessionRegistry::Refresh(
    std::string_view gateway_id, const std::vector<SessionRef>& sessions) {
  std::vector<RedisConnection::Args> commands;
  commands.reserve(sessions.size());
  for (const SessionRef& ref : sessions) {
    commands.push_back({"EVALSHA", refresh_sha_, "1", KeyOf(ref.uid), ref.device,
                        ConnectionPrefix(gateway_id, ref.conn_id), std::to_string(ttl_ms_)});
  }
  absl::StatusOr<std::vector<Reply>> replies = redis_->Pipeline(commands);
  if (!replies.ok()) return replies.status();
  std::vector<uint64_t> stale;
  for (size_t i = 0; i < sessions.size(); ++i) {
    const redisReply* r = (*replies)[i].get();
    if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) stale.push_back(sessions[i].conn_id);
  }
  return stale;
}

RedisAsyncSessionRegistry::RedisAsyncSessionRegistry(RedisAsyncClient* redis, int64_t ttl_ms)
    : redis_(redis),
      ttl_ms_(ttl_ms),
      register_sha_(redis_->LoadScript(kRegisterScript)),
      unregister_sha_(redis_->LoadScript(kUnregisterScript)) {}

void RedisAsyncSessionRegistry::LookupMany(const std::vector<std::string>& uids, LookupDone done) {
  auto all = std::make_shared<std::vector<std::vector<Session>>>(uids.size());
  redis_->CommandMany(
      LookupCommands(uids),
      [all](size_t index, const redisReply* reply) { (*all)[index] = SessionsOfHash(reply); },
      [all, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return std::move(done)(std::move(status));
        std::move(done)(std::move(*all));
      });
}

void RedisAsyncSessionRegistry::RegisterAndList(const std::vector<Registration>& registrations,
                                                RegisterDone done) {
  using Outcomes = std::vector<absl::StatusOr<Registered>>;
  if (registrations.empty()) return std::move(done)(Outcomes{});
  auto sessions = std::make_shared<std::vector<Session>>();
  sessions->reserve(registrations.size());
  for (const Registration& registration : registrations) {
    sessions->push_back(registration.session);
  }
  auto outcomes = std::make_shared<Outcomes>(registrations.size(),
                                             absl::InternalError("no reply to the registration"));
  redis_->CommandMany(
      RegisterCommands(register_sha_, ttl_ms_, registrations),
      [sessions, outcomes](size_t index, const redisReply* reply) {
        (*outcomes)[index] = RegisteredOf(reply, (*sessions)[index]);
      },
      [outcomes, done = std::move(done)](absl::Status status) mutable {
        // A failed command (a dropped connection, NOSCRIPT after a Redis restart) fails the batch:
        // its logins are answered with the cause and retried by their clients.
        if (!status.ok()) std::fill(outcomes->begin(), outcomes->end(), status);
        std::move(done)(std::move(*outcomes));
      });
}

void RedisAsyncSessionRegistry::UnregisterAll(const std::vector<Registration>& sessions,
                                              Done done) {
  if (sessions.empty()) return std::move(done)(absl::OkStatus());
  redis_->CommandMany(
      UnregisterCommands(unregister_sha_, sessions), [](size_t, const redisReply*) {},
      [done = std::move(done)](absl::Status status) mutable {
        std::move(done)(std::move(status));
      });
}

}  // namespace im::store
