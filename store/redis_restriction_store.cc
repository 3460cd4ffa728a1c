#include "store/redis_restriction_store.h"

#include <hiredis/hiredis.h>

#include <charconv>
#include <optional>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"
#include "common/status_macros.h"
#include "fmt/format.h"
#include "store/restriction_rules.h"

namespace im::store {
namespace {

// KEYS[1] hash, KEYS[2] version counter; ARGV field, value, prune cutoff (ms). Drops the other
// fields whose until_ms is below the cutoff, then sets the field; INCRs the counter only when the
// value changed. Returns 1 when it did.
constexpr char kPutScript[] = R"lua(
local cutoff = tonumber(ARGV[3])
local all = redis.call('HGETALL', KEYS[1])
for i = 1, #all, 2 do
  local until_ms = tonumber(string.match(all[i + 1], '^%-?%d+:(%-?%d+)$'))
  if until_ms and until_ms < cutoff and all[i] ~= ARGV[1] then
    redis.call('HDEL', KEYS[1], all[i])
  end
end
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('INCR', KEYS[2])
return 1)lua";

// KEYS[1] hash, KEYS[2] version counter; ARGV field. Returns 1 when the field was there.
constexpr char kRemoveScript[] = R"lua(
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
redis.call('INCR', KEYS[2])
return 1)lua";

template <typename Int>
bool ParseInt(std::string_view text, Int* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::string FieldOf(RestrictionKind kind, std::string_view subject) {
  return fmt::format("{}:{}", static_cast<int>(kind), subject);
}

// For a log line: a field's first bytes, escaped (they are whatever some writer put there).
std::string Printable(std::string_view field) {
  const std::string_view head = field.substr(0, 80);
  return absl::CHexEscape(absl::string_view(head.data(), head.size()));
}

// A field and its value back as a restriction; nullopt when either cannot be read or the kind is
// not one this build knows.
std::optional<Restriction> Decode(std::string_view field, std::string_view value) {
  const size_t kind_end = field.find(':');
  const size_t times_split = value.find(':');
  if (kind_end == std::string_view::npos || times_split == std::string_view::npos) {
    return std::nullopt;
  }
  int64_t kind = 0;
  Restriction restriction;
  if (!ParseInt(field.substr(0, kind_end), &kind) || !IsKnownRestrictionKind(kind) ||
      !ParseInt(value.substr(0, times_split), &restriction.since_ms) ||
      !ParseInt(value.substr(times_split + 1), &restriction.until_ms)) {
    return std::nullopt;
  }
  restriction.kind = static_cast<RestrictionKind>(kind);
  restriction.subject = std::string(field.substr(kind_end + 1));
  if (restriction.subject.empty()) return std::nullopt;
  return restriction;
}

absl::StatusOr<bool> ChangedOf(const RedisConnection::Reply& reply, std::string_view what) {
  if (reply->type != REDIS_REPLY_INTEGER || (reply->integer != 0 && reply->integer != 1)) {
    return absl::InternalError(
        fmt::format("redis: unexpected reply to the restriction {} script", what));
  }
  return reply->integer == 1;
}

}  // namespace

RedisRestrictionStore::RedisRestrictionStore(std::shared_ptr<RedisConnection> redis,
                                             std::string prefix, common::MillisClock now_ms)
    : redis_(std::move(redis)),
      hash_key_(absl::StrCat(prefix, "restrictions")),
      version_key_(absl::StrCat(prefix, "restrictions:version")),
      now_ms_(std::move(now_ms)),
      put_sha_(redis_->LoadScript(kPutScript)),
      remove_sha_(redis_->LoadScript(kRemoveScript)) {}

absl::Status RedisRestrictionStore::Put(const Restriction& restriction) {
  IM_RETURN_IF_ERROR(CheckRestrictionKey(restriction.kind, restriction.subject));
  IM_ASSIGN_OR_RETURN(
      RedisConnection::Reply reply,
      redis_->Command({"EVALSHA", put_sha_, "2", hash_key_, version_key_,
                       FieldOf(restriction.kind, restriction.subject),
                       absl::StrCat(restriction.since_ms, ":", restriction.until_ms),
                       std::to_string(now_ms_() - kPruneGraceMs)}));
  return ChangedOf(reply, "put").status();
}

absl::StatusOr<bool> RedisRestrictionStore::Remove(RestrictionKind kind, std::string_view subject) {
  IM_RETURN_IF_ERROR(CheckRestrictionKey(kind, subject));
  IM_ASSIGN_OR_RETURN(RedisConnection::Reply reply,
                      redis_->Command({"EVALSHA", remove_sha_, "2", hash_key_, version_key_,
                                       FieldOf(kind, subject)}));
  return ChangedOf(reply, "remove");
}

absl::StatusOr<uint64_t> RedisRestrictionStore::Version() {
  IM_ASSIGN_OR_RETURN(RedisConnection::Reply reply, redis_->Command({"GET", version_key_}));
  if (reply->type == REDIS_REPLY_NIL) return uint64_t{0};  // never changed
  uint64_t version = 0;
  if (reply->type != REDIS_REPLY_STRING ||
      !ParseInt(RedisConnection::TextOf(reply.get()), &version)) {
    return absl::InternalError(absl::StrCat("redis: ", version_key_, " is not a counter"));
  }
  return version;
}

absl::StatusOr<std::vector<Restriction>> RedisRestrictionStore::LoadLive(int64_t now_ms) {
  IM_ASSIGN_OR_RETURN(RedisConnection::Reply reply, redis_->Command({"HGETALL", hash_key_}));
  if (reply->type != REDIS_REPLY_ARRAY) {
    return absl::InternalError(absl::StrCat("redis: unexpected reply to HGETALL ", hash_key_));
  }
  std::vector<Restriction> live;
  for (size_t i = 0; i + 1 < reply->elements; i += 2) {
    const redisReply* field = reply->element[i];
    const redisReply* value = reply->element[i + 1];
    std::optional<Restriction> restriction;
    if (field->type == REDIS_REPLY_STRING && value->type == REDIS_REPLY_STRING) {
      restriction = Decode(RedisConnection::TextOf(field), RedisConnection::TextOf(value));
    }
    if (!restriction) {
      skipped_fields_.fetch_add(1, std::memory_order_relaxed);
      IM_LOG_RATE_LIMITED(
          spdlog::level::warn, "redis {}: skipped unreadable restriction {}", hash_key_,
          field->type == REDIS_REPLY_STRING ? Printable(RedisConnection::TextOf(field))
                                            : std::string("(not a string)"));
      continue;
    }
    if (restriction->until_ms > now_ms) live.push_back(*std::move(restriction));
  }
  return live;
}

}  // namespace im::store
