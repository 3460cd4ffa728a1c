#include "store/redis_ttl_map.h"

#include "absl/strings/str_cat.h"

namespace im::store {

namespace {

// One SET ... PX per entry.
std::vector<RedisConnection::Args> SetCommands(const std::string& prefix,
                                               const TtlMap::Entries& entries, int64_t ttl_ms) {
  const std::string ttl = std::to_string(ttl_ms);
  std::vector<RedisConnection::Args> commands;
  commands.reserve(entries.size());
  for (const auto& [key, value] : entries) {
    commands.push_back({"SET", absl::StrCat(prefix, key), value, "PX", ttl});
  }
  return commands;
}

}  // namespace

absl::Status RedisTtlMap::PutMany(const Entries& entries, int64_t ttl_ms) {
  if (entries.empty()) return absl::OkStatus();
  return redis_->Pipeline(SetCommands(prefix_, entries, ttl_ms)).status();
}

void RedisAsyncTtlMap::PutMany(const TtlMap::Entries& entries, int64_t ttl_ms, Done done) {
  redis_->CommandMany(
      SetCommands(prefix_, entries, ttl_ms), [](size_t, const redisReply*) {}, std::move(done));
}

void RedisAsyncTtlMap::Delete(std::string_view key, Done done) {
  redis_->Command({"DEL", absl::StrCat(prefix_, std::string(key))},
                  [done = std::move(done)](absl::StatusOr<const redisReply*> reply) mutable {
                    std::move(done)(reply.status());
                  });
}

absl::StatusOr<std::optional<std::string>> RedisTtlMap::PutIfAbsent(std::string_view key,
                                                                    std::string_view value,
                                                                    int64_t ttl_ms) {
  // SET NX GET (Redis 7.0+): one round trip that either sets the key or returns what is there.
  absl::StatusOr<RedisConnection::Reply> reply =
      redis_->Command({"SET", absl::StrCat(prefix_, std::string(key)), std::string(value), "NX",
                       "GET", "PX", std::to_string(ttl_ms)});
  if (!reply.ok()) return reply.status();
  if ((*reply)->type == REDIS_REPLY_STRING) {
    return std::optional<std::string>(std::string(RedisConnection::TextOf(reply->get())));
  }
  return std::optional<std::string>();
}

absl::Status RedisTtlMap::Delete(std::string_view key) {
  return redis_->Command({"DEL", absl::StrCat(prefix_, std::string(key))}).status();
}

absl::StatusOr<std::vector<std::optional<std::string>>> RedisTtlMap::Get(
    const std::vector<std::string>& keys) {
  std::vector<std::optional<std::string>> values(keys.size());
  if (keys.empty()) return values;
  RedisConnection::Args command = {"MGET"};
  for (const std::string& key : keys) command.push_back(absl::StrCat(prefix_, key));
  absl::StatusOr<RedisConnection::Reply> reply = redis_->Command(command);
  if (!reply.ok()) return reply.status();
  const redisReply* r = reply->get();
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i < r->elements && i < keys.size(); ++i) {
    if (r->element[i]->type == REDIS_REPLY_STRING) {
      values[i] = std::string(RedisConnection::TextOf(r->element[i]));
    }
  }
  return values;
}

}  // namespace im::store
