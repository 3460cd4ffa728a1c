#pragma once

#include <optional>
#include <string>

#include "im/v1/client.pb.h"

// What the gateway knows of client requests without knowing each type: the Frame's naming
// convention (a request body `x_req`, its response `x_resp` with a `status`), read by reflection,
// so that a new request type touches logic and the protocol, not the gateway.
namespace im::gateway {

// Whether the frame's body is a request a client may send (`*_req`). Login and ping are requests
// too, handled by the gateway itself before this matters.
bool IsClientRequest(const im::v1::Frame& frame);

// Whether logic may see the request twice without harm (resent after a stream broke).
bool IsIdempotent(const im::v1::Frame& request);

// The response frame a request gets when the gateway answers it itself: the `x_resp` body of an
// `x_req` with its status set. Nullopt for a request without a response body (AckReq).
std::optional<im::v1::Frame> FailureResponse(const im::v1::Frame& request, im::v1::Code code,
                                             const std::string& message);
// The same from what it needs of the request: its frame id and body type (for a caller that
// handed the request itself on).
std::optional<im::v1::Frame> FailureResponse(uint64_t frame_id,
                                             im::v1::Frame::BodyCase request_body,
                                             im::v1::Code code, const std::string& message);

}  // namespace im::gateway
