#include "logic/delivery/recipient_lookup.h"

#include <chrono>
#include <memory>

#include "common/clock.h"

namespace im::logic {

RecipientLookup::RecipientLookup(LogicLoop* loop, store::SessionRegistry* registry,
                                 LogicMetrics* metrics)
    : loop_(loop), registry_(registry), metrics_(metrics) {}

void RecipientLookup::LookupMany(std::vector<std::string> uids, Done done) {
  if (loop_ == nullptr) return LookupBlocking(uids, std::move(done));
  if (loop_->InLoopThread()) return LookupOnLoop(std::move(uids), std::move(done));
  // A refused task is destroyed without running, so what it needs lives outside it.
  struct Pending {
    std::vector<std::string> uids;
    Done done;
  };
  auto pending = std::make_shared<Pending>(Pending{std::move(uids), std::move(done)});
  if (!loop_->Post(
          [this, pending] { LookupOnLoop(std::move(pending->uids), std::move(pending->done)); })) {
    LookupBlocking(pending->uids, std::move(pending->done));
  }
}

void RecipientLookup::LookupOnLoop(std::vector<std::string> uids, Done done) {
  const auto started = std::chrono::steady_clock::now();
  auto looked_up = std::make_shared<const std::vector<std::string>>(std::move(uids));
  loop_->sessions()->LookupMany(
      *looked_up, [this, started, looked_up, done = std::move(done)](Sessions sessions) mutable {
        metrics_->store_session_lookup.Observe(common::SecondsSince(started));
        std::move(done)(*looked_up, std::move(sessions));
      });
}

void RecipientLookup::LookupBlocking(const std::vector<std::string>& uids, Done done) {
  Sessions sessions = [&] {
    StoreTimer timer(&metrics_->store_session_lookup);
    return registry_->LookupMany(uids);
  }();
  std::move(done)(uids, std::move(sessions));
}

}  // namespace im::logic
