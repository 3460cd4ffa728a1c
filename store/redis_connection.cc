#include "store/redis_connection.h"

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "fmt/format.h"
#include "store/redis_replies.h"

namespace im::store {

RedisConnection::RedisConnection(RedisOptions options)
    : options_(std::move(options)), tls_bridge_(RedisTlsBridgeFor(options_)) {
  for (size_t i = 0; i < std::max<size_t>(1, options_.connections); ++i) {
    slots_.push_back(std::make_unique<Slot>());
  }
}

RedisConnection::~RedisConnection() {
  for (auto& slot : slots_) {
    if (slot->context != nullptr) redisFree(slot->context);
  }
}

std::string RedisConnection::LoadScript(std::string_view text) {
  std::lock_guard<std::mutex> lock(scripts_mutex_);
  scripts_.emplace_back(text);
  return ScriptSha1(text);
}

std::unique_lock<std::mutex> RedisConnection::Take(Slot** slot) {
  const size_t start = next_.fetch_add(1);
  for (size_t i = 0; i < slots_.size(); ++i) {
    Slot& candidate = *slots_[(start + i) % slots_.size()];
    std::unique_lock<std::mutex> lock(candidate.mutex, std::try_to_lock);
    if (lock.owns_lock()) {
      *slot = &candidate;
      return lock;
    }
  }
  *slot = slots_[start % slots_.size()].get();
  return std::unique_lock<std::mutex>((*slot)->mutex);
}

absl::Status RedisConnection::Fail(Slot& slot, std::string_view what) {
  std::string detail = WithBridgeError(
      slot.context != nullptr ? slot.context->errstr : "no connection", tls_bridge_);
  if (slot.context != nullptr) redisFree(slot.context);
  slot.context = nullptr;
  slot.scripts_loaded = 0;
  return absl::UnavailableError(
      fmt::format("redis {}:{}: {}: {}", options_.host, options_.port, what, detail));
}

absl::Status RedisConnection::EnsureConnected(Slot& slot) {
  if (slot.context != nullptr) return EnsureScriptsLoaded(slot);
  timeval timeout{};
  timeout.tv_sec = options_.timeout.count() / 1000;
  timeout.tv_usec = (options_.timeout.count() % 1000) * 1000;
  if (!tls_bridge_.ok()) return tls_bridge_.status();
  slot.context = *tls_bridge_ != nullptr
                     ? redisConnectUnixWithTimeout((*tls_bridge_)->socket_path().c_str(), timeout)
                     : redisConnectWithTimeout(options_.host.c_str(), options_.port, timeout);
  if (slot.context == nullptr || slot.context->err != 0) return Fail(slot, "connect");
  if (redisSetTimeout(slot.context, timeout) != REDIS_OK) return Fail(slot, "set timeout");
  if (absl::Status auth = Authenticate(slot); !auth.ok()) return auth;
  return EnsureScriptsLoaded(slot);
}

absl::Status RedisConnection::Authenticate(Slot& slot) {
  if (options_.password.empty()) return absl::OkStatus();
  const std::string& user = options_.username;
  const std::string& password = options_.password;
  Reply reply(static_cast<redisReply*>(
      user.empty() ? redisCommand(slot.context, "AUTH %b", password.data(), password.size())
                   : redisCommand(slot.context, "AUTH %b %b", user.data(), user.size(),
                                  password.data(), password.size())));
  if (reply == nullptr) return Fail(slot, "auth");
  if (reply->type != REDIS_REPLY_ERROR) return absl::OkStatus();
  // The reply names no secret ("WRONGPASS invalid username-password pair ...").
  const std::string refusal(TextOf(reply.get()));
  redisFree(slot.context);
  slot.context = nullptr;
  return absl::PermissionDeniedError(
      fmt::format("redis {}:{}: AUTH refused: {}", options_.host, options_.port, refusal));
}

absl::Status RedisConnection::EnsureScriptsLoaded(Slot& slot) {
  std::vector<std::string> missing;
  {
    std::lock_guard<std::mutex> lock(scripts_mutex_);
    if (slot.scripts_loaded == scripts_.size()) return absl::OkStatus();
    missing.assign(scripts_.begin() + static_cast<ptrdiff_t>(slot.scripts_loaded), scripts_.end());
  }
  for (const std::string& script : missing) {
    Reply reply(static_cast<redisReply*>(
        redisCommand(slot.context, "SCRIPT LOAD %b", script.data(), script.size())));
    if (reply == nullptr) return Fail(slot, "script load");
    if (reply->type == REDIS_REPLY_ERROR) {
      // A Redis still loading its data after a restart refuses this too: unavailable for now.
      const absl::Status status = StatusOfErrorReply(TextOf(reply.get()));
      return absl::Status(status.code(), absl::StrCat("SCRIPT LOAD: ", status.message()));
    }
    ++slot.scripts_loaded;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::Pipeline(
    const std::vector<Args>& commands) {
  Slot* slot = nullptr;
  std::unique_lock<std::mutex> lock = Take(&slot);
  const bool reused = slot->context != nullptr;
  bool closed_before_reply = false;
  absl::StatusOr<std::vector<Reply>> replies = PipelineOn(*slot, commands, &closed_before_reply);
  // A pooled connection the server closed while it sat idle (Redis restarted, or dropped idle
  // clients) fails at its next use before any reply came: the new server never saw the commands,
  // so they are sent once more on a fresh connection instead of failing the caller.
  if (reused && closed_before_reply) replies = PipelineOn(*slot, commands, &closed_before_reply);
  return replies;
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::PipelineOn(
    Slot& slot, const std::vector<Args>& commands, bool* closed_before_reply) {
  *closed_before_reply = false;
  if (absl::Status status = EnsureConnected(slot); !status.ok()) return status;
  redisContext* context = slot.context;
  for (const Args& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return Fail(slot, "send");
    }
  }
  std::vector<Reply> replies;
  absl::Status first_error;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) {
      // The peer had closed the connection (EOF, or a reset / broken pipe on the write) before
      // the first reply. Not a timeout (EAGAIN): a stalled server may still run the commands.
      const int error_number = errno;
      *closed_before_reply =
          i == 0 &&
          (context->err == REDIS_ERR_EOF ||
           (context->err == REDIS_ERR_IO && (error_number == ECONNRESET || error_number == EPIPE)));
      return Fail(slot, "receive");
    }
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR && first_error.ok()) {
      const std::string_view text = TextOf(reply.get());
      // The scripts are loaded again before this connection's next call.
      if (IsNoScript(text)) slot.scripts_loaded = 0;
      first_error = StatusOfErrorReply(text);
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
