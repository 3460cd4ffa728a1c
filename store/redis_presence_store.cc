#include "store/redis_presence_store.h"

#include <hiredis/hiredis.h>

#include <algorithm>
#include <charconv>
#include <optional>
#include <set>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "fmt/format.h"

namespace im::store {
namespace {

// KEYS[1] the checks; ARGV now_ms, limit. Pops the due uids, earliest first.
constexpr char kTakeDueScript[] = R"lua(
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due)lua";

using Reply = RedisConnection::Reply;
constexpr auto TextOf = &RedisConnection::TextOf;

std::string MemberOf(const Watcher& watcher) {
  return absl::StrCat(watcher.uid, "|", watcher.device);
}

std::string WatchingKey(const Watcher& watcher) {
  return absl::StrCat("im:presence:watching:", MemberOf(watcher));
}

std::optional<Watcher> WatcherOf(std::string_view member) {
  const size_t bar = member.find('|');
  if (bar == std::string_view::npos) return std::nullopt;
  return Watcher{std::string(member.substr(0, bar)), std::string(member.substr(bar + 1))};
}

std::vector<std::string> StringsOf(const redisReply* reply) {
  std::vector<std::string> strings;
  for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements; ++i) {
    strings.emplace_back(TextOf(reply->element[i]));
  }
  return strings;
}

}  // namespace

RedisPresenceStore::RedisPresenceStore(std::shared_ptr<RedisConnection> redis,
                                       std::string checks_key)
    : redis_(std::move(redis)),
      checks_key_(std::move(checks_key)),
      take_due_sha_(redis_->LoadScript(kTakeDueScript)) {}

std::string RedisPresenceStore::WatchersKey(std::string_view target) {
  return fmt::format("im:presence:watchers:{}", target);
}

absl::Status RedisPresenceStore::Watch(const Watcher& watcher,
                                       const std::vector<std::string>& targets, int64_t now_ms,
                                       int64_t expires_ms) {
  const std::string watching = WatchingKey(watcher);
  IM_ASSIGN_OR_RETURN(Reply before, redis_->Command({"SMEMBERS", watching}));
  const std::set<std::string> now_watched(targets.begin(), targets.end());
  const std::string member = MemberOf(watcher);
  const std::string ttl_ms = std::to_string(std::max<int64_t>(expires_ms - now_ms, 1));
  const std::string until = std::to_string(expires_ms);
  std::vector<RedisConnection::Args> commands;
  for (const std::string& old_target : StringsOf(before.get())) {
    if (now_watched.count(old_target) == 0) {
      commands.push_back({"ZREM", WatchersKey(old_target), member});
    }
  }
  commands.push_back({"DEL", watching});
  for (const std::string& target : now_watched) {
    const std::string key = WatchersKey(target);
    commands.push_back({"ZADD", key, until, member});
    // GT: a key lives as long as its longest watch.
    commands.push_back({"PEXPIRE", key, ttl_ms, "GT"});
    commands.push_back({"PEXPIRE", key, ttl_ms, "NX"});
    commands.push_back({"SADD", watching, target});
  }
  if (!now_watched.empty()) commands.push_back({"PEXPIRE", watching, ttl_ms});
  return redis_->Pipeline(commands).status();
}

std::string RedisPresenceStore::LastSeenKey(std::string_view uid) {
  return fmt::format("im:seen:{}", uid);
}

absl::StatusOr<std::vector<std::vector<Watcher>>> RedisPresenceStore::WatchersOf(
    const std::vector<std::string>& targets, int64_t now_ms) {
  return WatchersAfter(targets, now_ms, {});
}

absl::StatusOr<std::vector<std::vector<Watcher>>> RedisPresenceStore::Changed(
    const std::vector<std::string>& uids, const std::vector<std::string>& left, int64_t now_ms,
    int64_t seen_ttl_ms) {
  std::vector<RedisConnection::Args> seen;
  seen.reserve(left.size());
  for (const std::string& uid : left) {
    seen.push_back(
        {"SET", LastSeenKey(uid), std::to_string(now_ms), "PX", std::to_string(seen_ttl_ms)});
  }
  return WatchersAfter(uids, now_ms, std::move(seen));
}

absl::StatusOr<std::vector<int64_t>> RedisPresenceStore::LastSeen(
    const std::vector<std::string>& uids) {
  std::vector<int64_t> seen(uids.size(), 0);
  if (uids.empty()) return seen;
  RedisConnection::Args command = {"MGET"};
  for (const std::string& uid : uids) command.push_back(LastSeenKey(uid));
  IM_ASSIGN_OR_RETURN(Reply reply, redis_->Command(command));
  for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements && i < uids.size();
       ++i) {
    const std::string_view text = TextOf(reply->element[i]);
    std::from_chars(text.data(), text.data() + text.size(), seen[i]);
  }
  return seen;
}

absl::StatusOr<std::vector<std::vector<Watcher>>> RedisPresenceStore::WatchersAfter(
    const std::vector<std::string>& targets, int64_t now_ms,
    std::vector<RedisConnection::Args> before) {
  std::vector<RedisConnection::Args> commands = std::move(before);
  const size_t first = commands.size();
  // "(": watches ending after now. Lapsed ones are not removed here (a command more per user on
  // every login): a replaced list removes its own, and the key expires with its longest watch.
  const std::string after_now = "(" + std::to_string(now_ms);
  for (const std::string& target : targets) {
    commands.push_back({"ZRANGE", WatchersKey(target), after_now, "+inf", "BYSCORE"});
  }
  if (commands.empty()) return std::vector<std::vector<Watcher>>();
  IM_ASSIGN_OR_RETURN(std::vector<Reply> replies, redis_->Pipeline(commands));
  std::vector<std::vector<Watcher>> all(targets.size());
  for (size_t i = 0; i < targets.size(); ++i) {
    for (const std::string& member : StringsOf(replies[first + i].get())) {
      if (auto watcher = WatcherOf(member)) all[i].push_back(std::move(*watcher));
    }
    std::sort(all[i].begin(), all[i].end(), [](const Watcher& a, const Watcher& b) {
      return std::tie(a.uid, a.device) < std::tie(b.uid, b.device);
    });
  }
  return all;
}

absl::Status RedisPresenceStore::ScheduleChecks(const std::vector<Check>& checks) {
  if (checks.empty()) return absl::OkStatus();
  RedisConnection::Args command = {"ZADD", checks_key_, "LT"};  // LT: an earlier time stays
  for (const auto& [uid, due_ms] : checks) {
    command.push_back(std::to_string(due_ms));
    command.push_back(uid);
  }
  return redis_->Command(command).status();
}

absl::Status RedisPresenceStore::CancelChecks(const std::vector<std::string>& uids) {
  if (uids.empty()) return absl::OkStatus();
  RedisConnection::Args command = {"ZREM", checks_key_};
  command.insert(command.end(), uids.begin(), uids.end());
  return redis_->Command(command).status();
}

absl::StatusOr<std::vector<std::string>> RedisPresenceStore::TakeDueChecks(int64_t now_ms,
                                                                           size_t limit) {
  IM_ASSIGN_OR_RETURN(Reply due, redis_->Command({"EVALSHA", take_due_sha_, "1", checks_key_,
                                                  std::to_string(now_ms), std::to_string(limit)}));
  return StringsOf(due.get());
}

}  // namespace im::store
