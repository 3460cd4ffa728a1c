#include "store/redis_member_list_cache.h"

#include <charconv>
#include <memory>

#include "fmt/format.h"

namespace im::store {
namespace {

constexpr char kVersionField[] = ":v";

// KEYS[1] version key, KEYS[2] list hash; ARGV version, ttl, then field/value pairs.
constexpr char kPutScript[] = R"lua(
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[2])
redis.call('HSET', KEYS[2], ':v', ARGV[1])
for i = 3, #ARGV, 2 do redis.call('HSET', KEYS[2], ARGV[i], ARGV[i + 1]) end
redis.call('PEXPIRE', KEYS[2], ARGV[2])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return 1)lua";

// KEYS[1] version key, KEYS[2] list hash; ARGV new version, ttl.
constexpr char kInvalidateScript[] = R"lua(
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[2])
return 1)lua";

std::string VersionKey(std::string_view group_id) { return fmt::format("im:gmv:{}", group_id); }

// SET NX GET (Redis 7.0+): the token there, or `token` when there was none, in one round trip.
std::vector<std::string> VersionCommand(std::string_view group_id, const std::string& token,
                                        int64_t ttl_ms) {
  return {"SET", VersionKey(group_id), token, "NX", "GET", "PX", std::to_string(ttl_ms)};
}

std::string VersionOf(const redisReply* reply, const std::string& token) {
  if (reply->type == REDIS_REPLY_STRING) return std::string(reply->str, reply->len);
  return token;
}
std::string ListKey(std::string_view group_id) { return fmt::format("im:gm:{}", group_id); }

template <typename Int>
bool ParseInt(std::string_view text, Int* value) {
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), *value);
  return error == std::errc() && end == text.data() + text.size() && !text.empty();
}

std::optional<GroupMember> DecodeMember(std::string_view uid, std::string_view value) {
  const size_t first = value.find('|');
  const size_t second = first == std::string_view::npos ? first : value.find('|', first + 1);
  GroupMember member;
  int role = 0;
  if (second == std::string_view::npos || !ParseInt(value.substr(0, first), &role) ||
      !im::v1::GroupRole_IsValid(role) ||
      !ParseInt(value.substr(first + 1, second - first - 1), &member.joined_seq) ||
      !ParseInt(value.substr(second + 1), &member.joined_ms)) {
    return std::nullopt;
  }
  member.uid = std::string(uid);
  member.role = static_cast<im::v1::GroupRole>(role);
  return member;
}

}  // namespace

RedisMemberListCache::RedisMemberListCache(std::shared_ptr<RedisConnection> redis, int64_t ttl_ms)
    : ttl_ms_(ttl_ms),
      redis_(std::move(redis)),
      put_sha_(redis_->LoadScript(kPutScript)),
      invalidate_sha_(redis_->LoadScript(kInvalidateScript)) {}

absl::StatusOr<std::string> RedisMemberListCache::Version(std::string_view group_id) {
  const std::string token = NewVersionToken();
  absl::StatusOr<RedisConnection::Reply> reply =
      redis_->Command(VersionCommand(group_id, token, ttl_ms_));
  if (!reply.ok()) return reply.status();
  return VersionOf(reply->get(), token);
}

void RedisAsyncMemberListVersions::VersionMany(const std::vector<std::string>& group_ids,
                                               Done done) {
  auto tokens = std::make_shared<std::vector<std::string>>();
  std::vector<RedisAsyncClient::Args> commands;
  for (const std::string& group_id : group_ids) {
    tokens->push_back(NewVersionToken());
    commands.push_back(VersionCommand(group_id, tokens->back(), ttl_ms_));
  }
  redis_->CommandMany(
      commands,
      [tokens](size_t index, const redisReply* reply) {
        (*tokens)[index] = VersionOf(reply, (*tokens)[index]);
      },
      [tokens, done = std::move(done)](absl::Status status) mutable {
        if (!status.ok()) return std::move(done)(std::move(status));
        std::move(done)(std::move(*tokens));
      });
}

absl::StatusOr<std::optional<std::vector<GroupMember>>> RedisMemberListCache::Get(
    std::string_view group_id, std::string_view version) {
  absl::StatusOr<RedisConnection::Reply> reply = redis_->Command({"HGETALL", ListKey(group_id)});
  if (!reply.ok()) return reply.status();
  const redisReply* r = reply->get();
  std::vector<GroupMember> members;
  bool current = false;
  for (size_t i = 0; r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2) {
    const std::string_view field = RedisConnection::TextOf(r->element[i]);
    const std::string_view value = RedisConnection::TextOf(r->element[i + 1]);
    if (field == kVersionField) {
      current = value == version;
    } else if (std::optional<GroupMember> member = DecodeMember(field, value)) {
      members.push_back(std::move(*member));
    } else {
      // Unreadable: treat the whole list as absent, so that it is loaded again from the database.
      return std::optional<std::vector<GroupMember>>();
    }
  }
  if (!current) return std::optional<std::vector<GroupMember>>();
  return std::optional<std::vector<GroupMember>>(std::move(members));
}

absl::Status RedisMemberListCache::Put(std::string_view group_id, std::string_view version,
                                       const std::vector<GroupMember>& members) {
  RedisConnection::Args args = {"EVALSHA",
                                put_sha_,
                                "2",
                                VersionKey(group_id),
                                ListKey(group_id),
                                std::string(version),
                                std::to_string(ttl_ms_)};
  args.reserve(args.size() + 2 * members.size());
  for (const GroupMember& member : members) {
    args.push_back(member.uid);
    args.push_back(fmt::format("{}|{}|{}", static_cast<int>(member.role), member.joined_seq,
                               member.joined_ms));
  }
  return redis_->Command(args).status();
}

absl::Status RedisMemberListCache::Invalidate(std::string_view group_id) {
  return redis_
      ->Command({"EVALSHA", invalidate_sha_, "2", VersionKey(group_id), ListKey(group_id),
                 NewVersionToken(), std::to_string(ttl_ms_)})
      .status();
}

}  // namespace im::store
