#include "store/redis_async_client.h"

#include <algorithm>
#include <memory>

#include "common/logging.h"
#include "fmt/format.h"
#include "store/hiredis_libuv_events.h"
#include "store/redis_replies.h"

namespace im::store {

namespace {
constexpr std::chrono::milliseconds kFirstBackoff{50};
constexpr std::chrono::milliseconds kMaxBackoff{2000};
}  // namespace

// What travels with a command through hiredis, as its privdata.
struct RedisAsyncClient::Pending {
  RedisAsyncClient* client;
  Done done;
};

RedisAsyncClient::RedisAsyncClient(uv_loop_t* loop, RedisOptions options)
    : loop_(loop),
      options_(std::move(options)),
      tls_bridge_(RedisTlsBridgeFor(options_)),
      backoff_(kFirstBackoff) {
  for (uv_timer_t* timer : {&reconnect_timer_, &timeout_timer_}) {
    uv_timer_init(loop_, timer);
    timer->data = this;
    ++open_handles_;
  }
}

RedisAsyncClient::~RedisAsyncClient() {
  if (context_ != nullptr) {
    redisAsyncContext* context = context_;
    state_ = State::kClosed;
    redisAsyncFree(context);  // pending commands fail here
    context_ = nullptr;
  }
}

void RedisAsyncClient::Start() {
  Connect();
  last_check_ = std::chrono::steady_clock::now();
  uv_timer_start(
      &timeout_timer_,
      [](uv_timer_t* timer) { static_cast<RedisAsyncClient*>(timer->data)->CheckTimeouts(); },
      static_cast<uint64_t>(CheckPeriod().count()), static_cast<uint64_t>(CheckPeriod().count()));
}

std::string RedisAsyncClient::LoadScript(std::string_view text) {
  scripts_.emplace_back(text);
  if (state_ == State::kConnecting || state_ == State::kConnected) {
    Issue({"SCRIPT", "LOAD", scripts_.back()}, [](absl::StatusOr<const redisReply*>) {});
  }
  return ScriptSha1(text);
}

void RedisAsyncClient::Connect() {
  if (!tls_bridge_.ok()) {
    last_error_ = std::string(tls_bridge_.status().message());
    state_ = State::kWaitingToReconnect;
    return ScheduleReconnect();
  }
  context_ = *tls_bridge_ != nullptr ? redisAsyncConnectUnix((*tls_bridge_)->socket_path().c_str())
                                     : redisAsyncConnect(options_.host.c_str(), options_.port);
  if (context_ == nullptr || context_->err != 0) {
    last_error_ = context_ != nullptr ? context_->errstr : "cannot allocate a connection";
    if (context_ != nullptr) redisAsyncFree(context_);
    context_ = nullptr;
    state_ = State::kWaitingToReconnect;
    return ScheduleReconnect();
  }
  context_->data = this;
  AttachToLoop(context_, loop_);  // cannot fail on a new context
  redisAsyncSetConnectCallback(context_, &RedisAsyncClient::OnConnected);
  redisAsyncSetDisconnectCallback(context_, &RedisAsyncClient::OnDisconnected);
  state_ = State::kConnecting;
  AuthenticateOnConnection();  // written first, once connected
  LoadScriptsOnConnection();
}

void RedisAsyncClient::AuthenticateOnConnection() {
  if (options_.password.empty()) return;
  Args auth = {"AUTH"};
  if (!options_.username.empty()) auth.push_back(options_.username);
  auth.push_back(options_.password);
  // Refused, the connection is dropped and made again after the backoff: it is not kept as
  // Redis's default user. Commands written meanwhile behind the AUTH fail NOAUTH on a Redis whose
  // default user needs a password (as it must, once clients have credentials).
  Issue(auth, [this](absl::StatusOr<const redisReply*> reply) {
    // Unavailable: the connection went before the answer (the next one tries again).
    if (reply.ok() || absl::IsUnavailable(reply.status())) return;
    Drop("AUTH refused: " + std::string(reply.status().message()));  // logged as it reconnects
  });
}

void RedisAsyncClient::LoadScriptsOnConnection() {
  for (const std::string& script : scripts_) {
    Issue({"SCRIPT", "LOAD", script}, [](absl::StatusOr<const redisReply*> reply) {
      if (!reply.ok()) {
        IM_LOG_RATE_LIMITED(spdlog::level::warn, "redis: script not loaded: {}",
                            reply.status().ToString());
      }
    });
  }
}

void RedisAsyncClient::Command(const Args& args, Done done) {
  if (state_ != State::kConnecting && state_ != State::kConnected) {
    return std::move(done)(absl::UnavailableError(
        fmt::format("redis {}:{}: not connected: {}", options_.host, options_.port, last_error_)));
  }
  Issue(args, std::move(done));
}

void RedisAsyncClient::CommandMany(const std::vector<Args>& commands, EachReply each,
                                   AllDone done) {
  if (commands.empty()) return std::move(done)(absl::OkStatus());
  struct Gather {
    EachReply each;
    AllDone done;
    size_t left;
    absl::Status first_failure;
  };
  auto gather = std::make_shared<Gather>(
      Gather{std::move(each), std::move(done), commands.size(), absl::OkStatus()});
  for (size_t i = 0; i < commands.size(); ++i) {
    Command(commands[i], [gather, i](absl::StatusOr<const redisReply*> reply) {
      if (reply.ok()) {
        gather->each(i, *reply);
      } else if (gather->first_failure.ok()) {
        gather->first_failure = reply.status();
      }
      if (--gather->left == 0) std::move(gather->done)(std::move(gather->first_failure));
    });
  }
}

void RedisAsyncClient::Issue(const Args& args, Done done) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const std::string& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto pending = std::make_unique<Pending>(Pending{this, std::move(done)});
  if (redisAsyncCommandArgv(context_, &RedisAsyncClient::OnReplyThunk, pending.get(),
                            static_cast<int>(argv.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    return std::move(pending->done)(absl::UnavailableError(fmt::format(
        "redis {}:{}: connection closing: {}", options_.host, options_.port, context_->errstr)));
  }
  pending.release();  // hiredis hands it back to OnReplyThunk exactly once
  pending_since_.push_back(std::chrono::steady_clock::now());
}

void RedisAsyncClient::OnReplyThunk(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  std::unique_ptr<Pending> pending(static_cast<Pending*>(privdata));
  pending->client->OnReply(static_cast<redisReply*>(reply), std::move(pending->done));
}

void RedisAsyncClient::OnReply(redisReply* reply, Done done) {
  if (!pending_since_.empty()) pending_since_.pop_front();
  if (reply == nullptr) {
    return std::move(done)(absl::UnavailableError(fmt::format(
        "redis {}:{}: connection lost: {}", options_.host, options_.port, last_error_)));
  }
  backoff_ = kFirstBackoff;
  if (reply->type == REDIS_REPLY_ERROR) {
    const std::string_view text = TextOfReply(reply);
    if (IsNoScript(text) && state_ == State::kConnected) LoadScriptsOnConnection();
    return std::move(done)(StatusOfErrorReply(text));
  }
  std::move(done)(reply);
}

void RedisAsyncClient::OnConnected(const redisAsyncContext* context, int status) {
  auto* client = static_cast<RedisAsyncClient*>(context->data);
  if (status == REDIS_OK) {
    client->state_ = State::kConnected;
    return;
  }
  // hiredis frees the context after this (and fails what was queued on it).
  client->last_error_ = client->DescribeError(context->errstr);
  client->context_ = nullptr;
  if (client->state_ == State::kClosed) return;
  client->state_ = State::kWaitingToReconnect;
  client->ScheduleReconnect();
}

void RedisAsyncClient::OnDisconnected(const redisAsyncContext* context, int status) {
  auto* client = static_cast<RedisAsyncClient*>(context->data);
  if (status != REDIS_OK) client->last_error_ = client->DescribeError(context->errstr);
  client->context_ = nullptr;  // hiredis frees it after this
  if (client->state_ == State::kClosed) return;
  client->state_ = State::kWaitingToReconnect;
  client->ScheduleReconnect();
}

std::string RedisAsyncClient::DescribeError(std::string hiredis_error) const {
  return WithBridgeError(std::move(hiredis_error), tls_bridge_);
}

void RedisAsyncClient::Drop(std::string_view why) {
  last_error_ = std::string(why);
  redisAsyncContext* context = context_;
  if (context == nullptr) return;
  redisAsyncFree(context);    // fails what is pending; OnDisconnected if it was connected
  if (context_ == context) {  // it was still connecting: no disconnect callback
    context_ = nullptr;
    state_ = State::kWaitingToReconnect;
    ScheduleReconnect();
  }
}

void RedisAsyncClient::ScheduleReconnect() {
  IM_LOG_RATE_LIMITED(spdlog::level::warn, "redis {}:{}: {}; connecting again in {} ms",
                      options_.host, options_.port, last_error_, backoff_.count());
  uv_timer_start(
      &reconnect_timer_,
      [](uv_timer_t* timer) {
        auto* client = static_cast<RedisAsyncClient*>(timer->data);
        if (client->state_ == State::kWaitingToReconnect) client->Connect();
      },
      static_cast<uint64_t>(backoff_.count()), 0);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

std::chrono::milliseconds RedisAsyncClient::CheckPeriod() const {
  return std::max<std::chrono::milliseconds>(options_.timeout / 4, std::chrono::milliseconds(10));
}

void RedisAsyncClient::CheckTimeouts() {
  const auto now = std::chrono::steady_clock::now();
  // A check later than its period means the loop was busy (running posted work, or descheduled):
  // meanwhile commands could be neither written nor answered, so that time is not Redis's. Without
  // this, a loop busy for longer than the timeout would drop a healthy connection and fail every
  // command it had just issued.
  const auto late = now - last_check_ - CheckPeriod();
  last_check_ = now;
  if (late > CheckPeriod()) {
    for (auto& since : pending_since_) since += late;
  }
  if (pending_since_.empty() || now - pending_since_.front() < options_.timeout) return;
  Drop(fmt::format("no reply within {} ms", options_.timeout.count()));
}

void RedisAsyncClient::Close(absl::AnyInvocable<void() &&> on_closed) {
  state_ = State::kClosed;
  last_error_ = "closed";
  if (context_ != nullptr) {
    redisAsyncContext* context = context_;
    redisAsyncFree(context);
    context_ = nullptr;
  }
  on_closed_ = std::move(on_closed);
  for (uv_timer_t* timer : {&reconnect_timer_, &timeout_timer_}) {
    uv_timer_stop(timer);
    uv_close(reinterpret_cast<uv_handle_t*>(timer), [](uv_handle_t* handle) {
      auto* client = static_cast<RedisAsyncClient*>(handle->data);
      if (--client->open_handles_ == 0 && client->on_closed_) std::move(client->on_closed_)();
    });
  }
}

std::chrono::steady_clock::duration RedisAsyncClient::oldest_pending_age() const {
  if (pending_since_.empty()) return std::chrono::steady_clock::duration::zero();
  return std::max(std::chrono::steady_clock::now() - pending_since_.front(),
                  std::chrono::steady_clock::duration::zero());
}

}  // namespace im::store
