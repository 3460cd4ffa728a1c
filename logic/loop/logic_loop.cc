#include "logic/loop/logic_loop.h"

#include <pthread.h>

#include <future>

#include "common/logging.h"

namespace im::logic {
namespace {

// How often a stopping loop checks whether Redis answered what it was asked.
constexpr uint64_t kDrainCheckMs = 1;

}  // namespace

LogicLoop::LogicLoop(std::string name, store::RedisOptions redis, MakeStores make_stores,
                     size_t queue_capacity, RedisLimits redis_limits, common::QueueWait queue_wait)
    : name_(std::move(name)),
      redis_options_(std::move(redis)),
      make_stores_(std::move(make_stores)),
      queue_capacity_(queue_capacity),
      redis_limits_(redis_limits),
      queue_wait_(queue_wait.shed),
      observe_wait_(std::move(queue_wait.observe)) {}

LogicLoop::~LogicLoop() { Stop(); }

void LogicLoop::Start() {
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  thread_ = std::thread([this, &started] { Run(&started); });
  ready.wait();
}

void LogicLoop::Run(std::promise<void>* started) {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  thread_id_ = std::this_thread::get_id();
  uv_loop_init(&loop_);
  queue_ = std::make_unique<common::LoopTaskQueue>(&loop_, queue_capacity_);
  queue_->Start();
  // Stop() wakes the loop here rather than through the bounded queue, which may be full.
  uv_async_init(&loop_, &stop_,
                [](uv_async_t* handle) { static_cast<LogicLoop*>(handle->data)->Close(); });
  stop_.data = this;
  redis_ = std::make_unique<store::RedisAsyncClient>(&loop_, redis_options_);
  stores_ = make_stores_(redis_.get());  // registers its scripts before the first connection
  redis_->Start();
  uv_timer_init(&loop_, &behind_watch_);
  behind_watch_.data = this;
  uv_timer_start(
      &behind_watch_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<LogicLoop*>(timer->data);
        self->redis_behind_lately_.store(self->RedisBehind(), std::memory_order_relaxed);
      },
      kBehindWatchMs, kBehindWatchMs);
  started->set_value();
  uv_run(&loop_, UV_RUN_DEFAULT);  // until Close() closed every handle
  stores_ = LoopStores();
  redis_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);  // the Redis adapter's last handle
  if (uv_loop_close(&loop_) != 0) spdlog::warn("{}: a handle was left open at exit", name_);
}

bool LogicLoop::Post(common::LoopTaskQueue::Task task) {
  return queue_ != nullptr && queue_->Post(std::move(task));
}

bool LogicLoop::PostSheddable(common::LoopTaskQueue::Task run, common::LoopTaskQueue::Task shed) {
  const auto posted = common::QueueWaitPolicy::Clock::now();
  return Post([this, posted, run = std::move(run), shed = std::move(shed)]() mutable {
    const auto now = common::QueueWaitPolicy::Clock::now();
    if (observe_wait_) observe_wait_(std::chrono::duration<double>(now - posted).count());
    // Nothing posted behind it: the queue is empty as far as anyone waits on it.
    if (queue_->depth() == 0) queue_wait_.OnEmpty(now);
    if (queue_wait_.ShouldShed(posted, now)) return std::move(shed)();
    std::move(run)();
  });
}

void LogicLoop::Stop() {
  if (!thread_.joinable()) return;
  uv_async_send(&stop_);
  thread_.join();
}

void LogicLoop::Close() {
  // The queue runs what it holds first; then the commands those tasks (and earlier ones) issued
  // are answered, or time out, before the client closes: a send batch's claims reach the writer
  // and a delivered batch's pushes go, rather than failing at shutdown.
  queue_->Close([] {});
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
  uv_timer_stop(&behind_watch_);
  uv_close(reinterpret_cast<uv_handle_t*>(&behind_watch_), nullptr);
  uv_timer_init(&loop_, &drain_);
  drain_.data = this;
  uv_timer_start(
      &drain_,
      [](uv_timer_t* timer) {
        auto* self = static_cast<LogicLoop*>(timer->data);
        if (self->redis_->pending() > 0) return;
        uv_timer_stop(timer);
        uv_close(reinterpret_cast<uv_handle_t*>(timer), nullptr);
        self->redis_->Close([] {});
      },
      0, kDrainCheckMs);
}

}  // namespace im::logic
