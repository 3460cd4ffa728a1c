#pragma once

#include <string>

#include "absl/status/status.h"
#include "common/retry_hint.h"
#include "im/v1/client.pb.h"

namespace im::logic {

// The reason given with RESOURCE_EXHAUSTED when the store executor's queue is full.
inline constexpr char kExecutorFullReason[] = "logic is overloaded: store executor queue is full";
// ... when the login executor's queue is full.
inline constexpr char kLoginQueueFullReason[] = "logic is overloaded: login queue is full";
// ... when a request waited longer in an executor's queue than its QueueWaitPolicy allows.
inline constexpr char kWaitedTooLongReason[] =
    "logic is overloaded: the request waited too long in its queue";
// The reason given with DEADLINE_EXCEEDED when a request's deadline passed while it was queued.
inline constexpr char kExpiredInQueueReason[] = "waited past its deadline in logic's queue";
// ... when the MySQL writer has no room for another message (logic.write_queue).
inline constexpr char kWriteQueueFullReason[] =
    "logic is overloaded: too many messages waiting to be persisted";

// absl, gRPC and the protocol share the codes 0..16, so a store error reaches the client as is.
inline im::v1::Code CodeOf(const absl::Status& status) {
  return static_cast<im::v1::Code>(static_cast<int>(status.code()));
}

// An overload refusal carries the retry hint (common/retry_hint.h).
inline void SetStatus(im::v1::Status* out, im::v1::Code code, std::string message = {}) {
  out->set_code(code);
  out->set_message(std::move(message));
  out->set_retry_after_ms(common::RetryAfterMsFor(code));
}

inline void SetStatus(im::v1::Status* out, const absl::Status& status) {
  SetStatus(out, CodeOf(status), std::string(status.message()));
}

}  // namespace im::logic
