#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>

namespace im::gateway {

// The logins of one gateway process waiting for logic, bounded (gateway.max_logins_in_flight),
// over every worker loop: past the bound a login is refused at once, RESOURCE_EXHAUSTED with a
// retry hint, instead of queueing behind a login storm and holding memory for each. A login holds
// a Slot from the moment it is sent until logic's answer (or its failure) is handled.
class LoginAdmission {
  struct State {
    explicit State(uint32_t max) : limit(max) {}
    const uint32_t limit;
    std::atomic<uint32_t> in_flight{0};
  };

 public:
  explicit LoginAdmission(uint32_t limit) : state_(std::make_shared<State>(limit)) {}

  // Move-only; gives its place back when destroyed. May outlive the admission (a reply that
  // arrives after the gateway stopped).
  class Slot {
   public:
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&& other) = delete;
    ~Slot() {
      if (state_) state_->in_flight.fetch_sub(1, std::memory_order_relaxed);
    }

   private:
    friend class LoginAdmission;
    explicit Slot(std::shared_ptr<State> state) : state_(std::move(state)) {}
    std::shared_ptr<State> state_;  // null once moved from
  };

  // Any thread: a slot, or nullopt when `limit` logins are in flight already.
  std::optional<Slot> TryAdmit() {
    uint32_t current = state_->in_flight.load(std::memory_order_relaxed);
    do {
      if (current >= state_->limit) return std::nullopt;
    } while (
        !state_->in_flight.compare_exchange_weak(current, current + 1, std::memory_order_relaxed));
    return Slot(state_);
  }

  uint32_t in_flight() const { return state_->in_flight.load(std::memory_order_relaxed); }

 private:
  std::shared_ptr<State> state_;
};

}  // namespace im::gateway
