#include "logic/ingress/logic_loop.h"

#include <pthread.h>

#include <future>

#include "common/logging.h"

namespace im::logic {

LogicLoop::LogicLoop(std::string name, store::RedisOptions redis, MakeLedger make_ledger,
                     size_t queue_capacity)
    : name_(std::move(name)),
      redis_options_(std::move(redis)),
      make_ledger_(std::move(make_ledger)),
      queue_capacity_(queue_capacity) {}

LogicLoop::~LogicLoop() { Stop(); }

void LogicLoop::Start() {
  std::promise<void> started;
  std::future<void> ready = started.get_future();
  thread_ = std::thread([this, &started] { Run(&started); });
  ready.wait();
}

void LogicLoop::Run(std::promise<void>* started) {
  pthread_setname_np(pthread_self(), name_.substr(0, 15).c_str());
  uv_loop_init(&loop_);
  queue_ = std::make_unique<common::LoopTaskQueue>(&loop_, queue_capacity_);
  queue_->Start();
  // Stop() wakes the loop here rather than through the bounded queue, which may be full.
  uv_async_init(&loop_, &stop_,
                [](uv_async_t* handle) { static_cast<LogicLoop*>(handle->data)->Close(); });
  stop_.data = this;
  redis_ = std::make_unique<store::RedisAsyncClient>(&loop_, redis_options_);
  ledger_ = make_ledger_(redis_.get());  // registers its scripts before the first connection
  redis_->Start();
  started->set_value();
  uv_run(&loop_, UV_RUN_DEFAULT);  // until Close() closed every handle
  ledger_.reset();
  redis_.reset();
  uv_run(&loop_, UV_RUN_NOWAIT);  // the Redis adapter's last handle
  if (uv_loop_close(&loop_) != 0) spdlog::warn("{}: a handle was left open at exit", name_);
}

bool LogicLoop::Post(common::LoopTaskQueue::Task task) {
  return queue_ != nullptr && queue_->Post(std::move(task));
}

void LogicLoop::Stop() {
  if (!thread_.joinable()) return;
  uv_async_send(&stop_);
  thread_.join();
}

void LogicLoop::Close() {
  // The queue runs what it holds first (sends whose claims then fail UNAVAILABLE as Redis
  // closes), then the client fails what is pending and closes.
  queue_->Close([] {});
  redis_->Close([] {});
  uv_close(reinterpret_cast<uv_handle_t*>(&stop_), nullptr);
}

}  // namespace im::logic
