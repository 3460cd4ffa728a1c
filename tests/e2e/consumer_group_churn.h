#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <thread>

#include "logic/group/kafka_connection.h"

namespace im::e2e {

// Makes a Kafka consumer group rebalance again and again, as a node joining and leaving would:
// on its own thread, a consumer (connected as `kafka` says) joins `group` subscribed to `topic` (a
// topic of its own, so it takes no partition from the group's real members), waits until it is
// assigned, leaves, and starts over every `period`, until Stop(). Each join and each leave is a
// rebalance, which with the eager protocol revokes every member's partitions.
class ConsumerGroupChurn {
 public:
  ConsumerGroupChurn(logic::KafkaConnection kafka, std::string group, std::string topic,
                     std::chrono::milliseconds period);
  ~ConsumerGroupChurn();  // Stop()
  ConsumerGroupChurn(const ConsumerGroupChurn&) = delete;
  ConsumerGroupChurn& operator=(const ConsumerGroupChurn&) = delete;

  void Start();
  void Stop();
  // Joins that were assigned their partition, so far; each caused two rebalances.
  int joins() const { return joins_.load(); }
  // Why the churn stopped early, if it did ("" if not). Any thread.
  std::string error() const;

 private:
  void Run();
  bool JoinAndLeave();
  bool Fail(std::string why);  // false

  const logic::KafkaConnection kafka_;
  const std::string group_;
  const std::string topic_;
  const std::chrono::milliseconds period_;
  std::atomic<bool> stopping_{false};
  std::atomic<int> joins_{0};
  mutable std::mutex mutex_;
  std::string error_;  // guarded by mutex_
  std::thread thread_;
};

}  // namespace im::e2e
