#include "logic/group/in_process_fanout_bus.h"

#include "common/logging.h"

namespace im::logic {

InProcessFanoutBus::InProcessFanoutBus(size_t queue_capacity, size_t batch_max,
                                       LogicMetrics* metrics)
    : queue_capacity_(queue_capacity), batch_max_(batch_max), metrics_(metrics) {}

InProcessFanoutBus::~InProcessFanoutBus() { Stop(); }

absl::Status InProcessFanoutBus::Start(Deliver deliver) {
  deliver_ = std::move(deliver);
  small_.thread = std::thread([this] { Run(&small_); });
  large_.thread = std::thread([this] { Run(&large_); });
  return absl::OkStatus();
}

void InProcessFanoutBus::Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
                                 HandedOver handed_over) {
  bool queued = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    Lane& target = lane == FanoutLane::kLarge ? large_ : small_;
    if (!stopping_ && target.queue.size() < queue_capacity_) {
      target.queue.push_back(record);
      wake_.notify_all();
      queued = true;
    }
  }
  if (handed_over) handed_over();
  if (queued) {
    metrics_->fanout_published_local.Increment();
    return;
  }
  metrics_->fanout_dropped.Increment();
  IM_LOG_RATE_LIMITED(spdlog::level::err,
                      "fan-out queue full or stopped: {}#{} not pushed (members get it by Sync)",
                      record.message().conv_id(), record.message().seq());
}

void InProcessFanoutBus::Run(Lane* lane) {
  std::vector<im::v1::FanoutRecord> batch;
  std::unique_lock<std::mutex> lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stopping_ || !lane->queue.empty(); });
    if (lane->queue.empty()) return;  // stopping, and everything was delivered
    batch.clear();
    while (!lane->queue.empty() && batch.size() < batch_max_) {
      batch.push_back(std::move(lane->queue.front()));
      lane->queue.pop_front();
    }
    lock.unlock();
    deliver_(batch);
    lock.lock();
  }
}

void InProcessFanoutBus::Stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (small_.thread.joinable()) small_.thread.join();
  if (large_.thread.joinable()) large_.thread.join();
}

}  // namespace im::logic
