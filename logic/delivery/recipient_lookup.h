#pragma once

#include <string>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "logic/logic_metrics.h"
#include "logic/loop/logic_loop.h"
#include "store/session_registry.h"

namespace im::logic {

// Where a delivery's recipients are connected, for single chat and group fan-out alike: one
// pipelined Redis round trip per call. With a LogicLoop the lookup runs on the loop's
// asynchronous client, so no thread waits for it and the lookups posted in one loop iteration
// leave in one write; `done` then runs on the loop's thread. Without a loop (in process), or when
// the loop refuses the work (a full queue, or stopping), the blocking registry answers on the
// calling thread.
class RecipientLookup {
 public:
  using Sessions = absl::StatusOr<std::vector<std::vector<store::Session>>>;
  // Gets the uids looked up and one list of sessions for each, in the same order.
  using Done = absl::AnyInvocable<void(const std::vector<std::string>& uids, Sessions) &&>;

  // `loop` may be null; `registry` and `metrics` are required.
  RecipientLookup(LogicLoop* loop, store::SessionRegistry* registry, LogicMetrics* metrics);

  // Any thread. `done` runs exactly once.
  void LookupMany(std::vector<std::string> uids, Done done);

 private:
  void LookupOnLoop(std::vector<std::string> uids, Done done);
  void LookupBlocking(const std::vector<std::string>& uids, Done done);

  LogicLoop* loop_;
  store::SessionRegistry* registry_;
  LogicMetrics* metrics_;
};

}  // namespace im::logic
