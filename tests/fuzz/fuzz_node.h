#pragma once

#include <functional>
#include <memory>
#include <string>

#include "logic/logic_metrics.h"
#include "logic/logic_options.h"
#include "logic/logic_server.h"
#include "prometheus/registry.h"

namespace im::fuzz {

// Ends the fuzzing run: libFuzzer keeps the input that made it abort.
[[noreturn]] void Fail(const char* target, const std::string& what);

// A logic node of this process on in-memory backends (the embedded node's wiring, without its
// gateway), made on a target's first input and stopped at exit, before the statics it uses go.
// Logging is off: refusals are what fuzzing makes, and logging them is I/O.
class FuzzNode {
 public:
  // `adjust` changes the options every target shares (dev mode, the token secret, no send
  // limits) before the node starts; it is used by the first call only.
  static FuzzNode& Get(const std::function<void(logic::LogicOptions&)>& adjust = {});

  logic::LogicServer& server() { return *server_; }

 private:
  explicit FuzzNode(const std::function<void(logic::LogicOptions&)>& adjust);
  void Stop();

  prometheus::Registry registry_;
  logic::LogicMetrics metrics_;
  std::unique_ptr<logic::LogicServer> server_;
};

}  // namespace im::fuzz
