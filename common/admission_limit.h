#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <utility>

namespace im::common {

// A bound on work admitted and not yet finished (logins waiting for logic, messages waiting to be
// persisted), shared by any number of threads: past the bound, work is refused at once instead of
// queueing and holding memory. Admitted work holds a Slot until it is done.
class AdmissionLimit {
  struct State {
    explicit State(uint32_t max) : limit(max) {}
    const uint32_t limit;
    std::atomic<uint32_t> in_flight{0};
  };

 public:
  explicit AdmissionLimit(uint32_t limit) : state_(std::make_shared<State>(limit)) {}

  // Move-only; gives its place back when destroyed. May outlive the limit (a reply that arrives
  // after its owner stopped).
  class Slot {
   public:
    Slot(Slot&& other) noexcept = default;
    Slot& operator=(Slot&& other) noexcept {
      if (this != &other) {
        Release();
        state_ = std::move(other.state_);
      }
      return *this;
    }
    ~Slot() { Release(); }

   private:
    friend class AdmissionLimit;
    explicit Slot(std::shared_ptr<State> state) : state_(std::move(state)) {}
    void Release() {
      if (state_) state_->in_flight.fetch_sub(1, std::memory_order_relaxed);
      state_.reset();
    }
    std::shared_ptr<State> state_;  // null once moved from or released
  };

  // Any thread: a slot, or nullopt when `limit` slots are held already.
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

}  // namespace im::common
