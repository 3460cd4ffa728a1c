#include "tests/fuzz/fuzz_node.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>

#include "common/clock.h"
#include "logic/backends/in_process_stores.h"
#include "tests/fuzz/request_handler_fuzz.h"

namespace im::fuzz {

void Fail(const char* target, const std::string& what) {
  std::fprintf(stderr, "%s: %s\n", target, what.c_str());
  std::abort();
}

FuzzNode& FuzzNode::Get(const std::function<void(logic::LogicOptions&)>& adjust) {
  static FuzzNode* node = [&adjust] {
    auto* made = new FuzzNode(adjust);
    std::atexit([] { Get().Stop(); });
    return made;
  }();
  return *node;
}

FuzzNode::FuzzNode(const std::function<void(logic::LogicOptions&)>& adjust) : metrics_(registry_) {
  spdlog::set_level(spdlog::level::off);
  logic::LogicOptions options;
  options.token_secret = kTokenSecret;
  options.dev_mode = true;
  // The limiter has tests of its own; here it would refuse most sends after the first burst
  // and keep the fuzzer out of the send path.
  options.send_rate_per_user = 0;
  options.group_send_rate_per_user = 0;
  if (adjust) adjust(options);
  absl::StatusOr<std::unique_ptr<logic::LogicServer>> server = logic::LogicServer::StartInProcess(
      options, logic::InProcessStores(options, &metrics_, common::UnixMillis), &metrics_);
  if (!server.ok()) Fail("fuzz node", "cannot start the node: " + server.status().ToString());
  server_ = std::move(*server);
}

void FuzzNode::Stop() {
  if (server_ != nullptr) server_->Shutdown(std::chrono::milliseconds(1'000));
}

}  // namespace im::fuzz
