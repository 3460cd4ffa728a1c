#include "logic/delivery/seq_order.h"

#include "common/logging.h"

namespace im::logic {

void SeqOrder::Expect(const std::string& conv_id, uint64_t seq) {
  const int64_t now = steady_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  outstanding_[conv_id].emplace(seq, Seq{now, false, nullptr});
}

void SeqOrder::Complete(const std::string& conv_id, uint64_t seq, Deliver deliver) {
  const int64_t now = steady_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  auto conversation = outstanding_.find(conv_id);
  Seqs::iterator entry;
  if (conversation == outstanding_.end() ||
      (entry = conversation->second.find(seq)) == conversation->second.end()) {
    if (deliver) std::move(deliver)();
    return;
  }
  entry->second.complete = true;
  entry->second.deliver = std::move(deliver);
  ReleaseHeadLocked(conversation->second, now);
  if (conversation->second.empty()) outstanding_.erase(conversation);
}

void SeqOrder::ReleaseHeadLocked(Seqs& seqs, int64_t now_ms) {
  while (!seqs.empty()) {
    auto head = seqs.begin();
    if (!head->second.complete) {
      if (now_ms - head->second.expected_ms <= max_hold_ms_) return;
      ++given_up_;
      IM_LOG_RATE_LIMITED(spdlog::level::err,
                          "seq {} was taken {} ms ago and its write never reported: delivering "
                          "past it",
                          head->first, now_ms - head->second.expected_ms);
    } else if (head->second.deliver) {
      std::move(head->second.deliver)();
    }
    seqs.erase(head);
  }
}

uint64_t SeqOrder::given_up() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return given_up_;
}

size_t SeqOrder::conversations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return outstanding_.size();
}

}  // namespace im::logic
