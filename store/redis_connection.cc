#include "store/redis_connection.h"

#include "fmt/format.h"

namespace im::store {

RedisConnection::~RedisConnection() {
  if (context_ != nullptr) redisFree(context_);
}

absl::Status RedisConnection::Fail(std::string_view what) {
  std::string detail = context_ != nullptr ? context_->errstr : "no connection";
  if (context_ != nullptr) redisFree(context_);
  context_ = nullptr;
  return absl::UnavailableError(
      fmt::format("redis {}:{}: {}: {}", options_.host, options_.port, what, detail));
}

absl::Status RedisConnection::EnsureConnected() {
  if (context_ != nullptr) return absl::OkStatus();
  timeval timeout{};
  timeout.tv_sec = options_.timeout.count() / 1000;
  timeout.tv_usec = (options_.timeout.count() % 1000) * 1000;
  context_ = redisConnectWithTimeout(options_.host.c_str(), options_.port, timeout);
  if (context_ == nullptr || context_->err != 0) return Fail("connect");
  if (redisSetTimeout(context_, timeout) != REDIS_OK) return Fail("set timeout");
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::Pipeline(
    const std::vector<Args>& commands) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (absl::Status status = EnsureConnected(); !status.ok()) return status;
  for (const Args& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context_, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return Fail("send");
    }
  }
  std::vector<Reply> replies;
  absl::Status first_error;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context_, &raw) != REDIS_OK || raw == nullptr) return Fail("receive");
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR && first_error.ok()) {
      first_error = absl::InternalError(fmt::format("redis error: {}", TextOf(reply.get())));
    }
    replies.push_back(std::move(reply));
  }
  if (!first_error.ok()) return first_error;
  return replies;
}

absl::StatusOr<RedisConnection::Reply> RedisConnection::Command(const Args& args) {
  absl::StatusOr<std::vector<Reply>> replies = Pipeline({args});
  if (!replies.ok()) return replies.status();
  return std::move(replies->front());
}

}  // namespace im::store
