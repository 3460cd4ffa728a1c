#pragma once

#include <cstdint>

#include "im/v1/client.pb.h"

namespace im::common {

// How long a client refused for overload is told to wait before trying again (Status and Error's
// retry_after_ms); the client adds a random part as long again. Long enough for a queue to drain
// a little, short against the client's patience (the gateway's request deadline is 5 s).
inline constexpr uint32_t kOverloadRetryAfterMs = 500;

// The codes that mean "overloaded, come back later": they carry the hint.
inline bool IsOverloadRefusal(im::v1::Code code) {
  return code == im::v1::RESOURCE_EXHAUSTED || code == im::v1::TOO_MANY_IN_FLIGHT;
}

// The codes after which a request may succeed if sent again (a send with the same client_msg_id,
// which then gets the seq it was stored under): a tier away, an unknown outcome, or overload.
inline bool IsRetryable(im::v1::Code code) {
  switch (code) {
    case im::v1::CANCELLED:
    case im::v1::UNKNOWN:
    case im::v1::DEADLINE_EXCEEDED:
    case im::v1::ABORTED:
    case im::v1::INTERNAL:
    case im::v1::UNAVAILABLE:
      return true;
    default:
      return IsOverloadRefusal(code);
  }
}

// The hint for a refusal of `code`: kOverloadRetryAfterMs for overload, 0 otherwise.
inline uint32_t RetryAfterMsFor(im::v1::Code code) {
  return IsOverloadRefusal(code) ? kOverloadRetryAfterMs : 0;
}

}  // namespace im::common
