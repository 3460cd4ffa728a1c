#include "store/redis_connection.h"

#include <openssl/evp.h>

#include <algorithm>

#include "fmt/format.h"

namespace im::store {

RedisConnection::RedisConnection(RedisOptions options) : options_(std::move(options)) {
  for (size_t i = 0; i < std::max<size_t>(1, options_.connections); ++i) {
    slots_.push_back(std::make_unique<Slot>());
  }
}

RedisConnection::~RedisConnection() {
  for (auto& slot : slots_) {
    if (slot->context != nullptr) redisFree(slot->context);
  }
}

namespace {

std::string Sha1Hex(std::string_view text) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  EVP_Digest(text.data(), text.size(), digest, &length, EVP_sha1(), nullptr);
  std::string hex;
  for (unsigned int i = 0; i < length; ++i) hex += fmt::format("{:02x}", digest[i]);
  return hex;
}

}  // namespace

std::string RedisConnection::LoadScript(std::string_view text) {
  std::lock_guard<std::mutex> lock(scripts_mutex_);
  scripts_.emplace_back(text);
  return Sha1Hex(text);
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
  std::string detail = slot.context != nullptr ? slot.context->errstr : "no connection";
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
  slot.context = redisConnectWithTimeout(options_.host.c_str(), options_.port, timeout);
  if (slot.context == nullptr || slot.context->err != 0) return Fail(slot, "connect");
  if (redisSetTimeout(slot.context, timeout) != REDIS_OK) return Fail(slot, "set timeout");
  return EnsureScriptsLoaded(slot);
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
      return absl::InternalError(fmt::format("redis SCRIPT LOAD: {}", TextOf(reply.get())));
    }
    ++slot.scripts_loaded;
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<RedisConnection::Reply>> RedisConnection::Pipeline(
    const std::vector<Args>& commands) {
  Slot* slot = nullptr;
  std::unique_lock<std::mutex> lock = Take(&slot);
  if (absl::Status status = EnsureConnected(*slot); !status.ok()) return status;
  redisContext* context = slot->context;
  for (const Args& args : commands) {
    std::vector<const char*> argv;
    std::vector<size_t> lengths;
    for (const std::string& arg : args) {
      argv.push_back(arg.data());
      lengths.push_back(arg.size());
    }
    if (redisAppendCommandArgv(context, static_cast<int>(argv.size()), argv.data(),
                               lengths.data()) != REDIS_OK) {
      return Fail(*slot, "send");
    }
  }
  std::vector<Reply> replies;
  absl::Status first_error;
  for (size_t i = 0; i < commands.size(); ++i) {
    void* raw = nullptr;
    if (redisGetReply(context, &raw) != REDIS_OK || raw == nullptr) return Fail(*slot, "receive");
    Reply reply(static_cast<redisReply*>(raw));
    if (reply->type == REDIS_REPLY_ERROR && first_error.ok()) {
      // A Redis that is loading its data or is a replica being promoted answers every command
      // with one of these: it will serve again soon, so the caller may retry.
      const std::string_view text = TextOf(reply.get());
      // NOSCRIPT: the server lost its scripts (SCRIPT FLUSH, a restart behind a proxy); they
      // are loaded again before this connection's next call.
      if (text.starts_with("NOSCRIPT")) slot->scripts_loaded = 0;
      const bool transient = text.starts_with("LOADING") || text.starts_with("BUSY") ||
                             text.starts_with("MASTERDOWN") || text.starts_with("TRYAGAIN") ||
                             text.starts_with("NOSCRIPT");
      const std::string message = fmt::format("redis error: {}", text);
      first_error = transient ? absl::UnavailableError(message) : absl::InternalError(message);
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
