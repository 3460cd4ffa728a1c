#include "store/redis_session_registry.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>

#include "common/status_macros.h"
#include "fmt/format.h"

namespace im::store {
namespace {

// KEYS[1] hash; ARGV device, value, ttl. Returns the value it replaced, or nil.
constexpr char kRegisterScript[] = R"lua(
local old = redis.call('HGET', KEYS[1], ARGV[1])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[3])
return old)lua";

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
  return fmt::format("{}|{}|{}", session.gateway_id, session.conn_id, session.login_ms);
}

template <typename Int>
bool ParseInt(std::string_view text, Int* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

// "<gateway_id>|<conn_id>|<login_ms>"; the gateway id never holds '|' (checked at its start-up).
std::optional<Session> DecodeSession(std::string_view device, std::string_view value) {
  const size_t first = value.find('|');
  const size_t second = first == std::string_view::npos ? first : value.find('|', first + 1);
  Session session;
  if (second == std::string_view::npos ||
      !ParseInt(value.substr(first + 1, second - first - 1), &session.conn_id) ||
      !ParseInt(value.substr(second + 1), &session.login_ms)) {
    return std::nullopt;
  }
  session.device = std::string(device);
  session.gateway_id = std::string(value.substr(0, first));
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

RedisConnection::Args RedisSessionRegistry::RegisterCommand(std::string_view uid,
                                                            const Session& session) const {
  return {"EVALSHA",
          register_sha_,
          "1",
          KeyOf(uid),
          session.device,
          EncodeSession(session),
          std::to_string(ttl_ms_)};
}

std::optional<Session> RedisSessionRegistry::ReplacedOf(const redisReply* reply,
                                                        const Session& session) {
  if (reply->type != REDIS_REPLY_STRING) return std::nullopt;
  std::optional<Session> replaced = DecodeSession(session.device, TextOf(reply));
  if (replaced && replaced->SameConnection(session)) replaced.reset();
  return replaced;
}

absl::StatusOr<std::optional<Session>> RedisSessionRegistry::Register(std::string_view uid,
                                                                      const Session& session) {
  IM_ASSIGN_OR_RETURN(Reply reply, redis_->Command(RegisterCommand(uid, session)));
  return ReplacedOf(reply.get(), session);
}

std::vector<absl::StatusOr<std::optional<Session>>> RedisSessionRegistry::RegisterMany(
    const std::vector<Registration>& registrations) {
  if (registrations.empty()) return {};
  std::vector<RedisConnection::Args> commands;
  commands.reserve(registrations.size());
  for (const Registration& registration : registrations) {
    commands.push_back(RegisterCommand(registration.uid, registration.session));
  }
  absl::StatusOr<std::vector<Reply>> replies = redis_->Pipeline(commands);
  if (!replies.ok()) {
    return std::vector<absl::StatusOr<std::optional<Session>>>(registrations.size(),
                                                               replies.status());
  }
  std::vector<absl::StatusOr<std::optional<Session>>> outcomes;
  outcomes.reserve(registrations.size());
  for (size_t i = 0; i < registrations.size(); ++i) {
    outcomes.push_back(ReplacedOf((*replies)[i].get(), registrations[i].session));
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

void RedisAsyncSessionLookup::LookupMany(const std::vector<std::string>& uids, Done done) {
  auto all = std::make_shared<std::vector<std::vector<Session>>>(uids.size());
  redis_->CommandMany(
      LookupCommands(uids),
      [all](size_t index, const redisReply* reply) { (*all)[index] = SessionsOfHash(reply); },
      [all, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return std::move(done)(std::move(status));
        std::move(done)(std::move(*all));
      });
}

}  // namespace im::store
