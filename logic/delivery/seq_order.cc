#include "logic/delivery/seq_order.h"

#include "common/logging.h"

namespace im::logic {

SeqOrder::Hold SeqOrder::HoldConversation(const std::string& conv_id) {
  const int64_t now = steady_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  Conversation& conversation = outstanding_[conv_id];
  if (conversation.holds++ == 0) conversation.held_since_ms = now;
  return Hold(this, conv_id);
}

void SeqOrder::Unhold(const std::string& conv_id) {
  const int64_t now = steady_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  auto conversation = outstanding_.find(conv_id);
  if (conversation == outstanding_.end()) return;
  // Zero already: the hold was given up on (max_hold).
  if (conversation->second.holds > 0) conversation->second.holds--;
  ReleaseHeadLocked(conversation->second, now);
  if (conversation->second.idle()) outstanding_.erase(conversation);
}

void SeqOrder::Expect(const std::string& conv_id, uint64_t seq) {
  const int64_t now = steady_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  outstanding_[conv_id].seqs.emplace(seq, Seq{now, false, nullptr});
}

void SeqOrder::Complete(const std::string& conv_id, uint64_t seq, Deliver deliver) {
  const int64_t now = steady_ms_();
  std::lock_guard<std::mutex> lock(mutex_);
  auto conversation = outstanding_.find(conv_id);
  Seqs::iterator entry;
  if (conversation == outstanding_.end() ||
      (entry = conversation->second.seqs.find(seq)) == conversation->second.seqs.end()) {
    if (deliver) std::move(deliver)();
    return;
  }
  entry->second.complete = true;
  entry->second.deliver = std::move(deliver);
  ReleaseHeadLocked(conversation->second, now);
  if (conversation->second.idle()) outstanding_.erase(conversation);
}

void SeqOrder::ReleaseHeadLocked(Conversation& conversation, int64_t now_ms) {
  if (conversation.holds > 0) {
    if (now_ms - conversation.held_since_ms <= max_hold_ms_) return;
    ++given_up_;
    IM_LOG_RATE_LIMITED(spdlog::level::err,
                        "a seq being taken was held for {} ms and never expected: delivering "
                        "past it",
                        now_ms - conversation.held_since_ms);
    conversation.holds = 0;
  }
  Seqs& seqs = conversation.seqs;
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
