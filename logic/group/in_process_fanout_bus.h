#pragma once

#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "logic/group/fanout_bus.h"
#include "logic/logic_metrics.h"

namespace im::logic {

// FanoutBus inside one process: a bounded queue and a delivery thread per lane. It serves the
// single-node mode and is KafkaFanoutBus's fallback for records Kafka did not take. Nothing
// survives the process, and no other node sees the records.
class InProcessFanoutBus final : public FanoutBus {
 public:
  InProcessFanoutBus(size_t queue_capacity, size_t batch_max, LogicMetrics* metrics);
  ~InProcessFanoutBus() override;

  absl::Status Start(Deliver deliver) override;
  // A full lane drops the record (counted, logged): its members get it by Sync.
  void Publish(const im::v1::FanoutRecord& record, FanoutLane lane,
               HandedOver handed_over) override;
  void Stop() override;

 private:
  struct Lane {
    std::deque<im::v1::FanoutRecord> queue;
    std::thread thread;
  };
  void Run(Lane* lane);

  const size_t queue_capacity_;
  const size_t batch_max_;
  LogicMetrics* metrics_;
  Deliver deliver_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  Lane small_;
  Lane large_;
};

}  // namespace im::logic
