#pragma once

#include <string>

#include "im/v1/client.pb.h"
#include "nlohmann/json.hpp"

namespace im::logic {

// What an admin API call answers: an HTTP status and a JSON body (an object; for a refusal the
// Error of docs/openapi/admin-api.yaml).
struct AdminReply {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  uint32_t retry_after_ms = 0;  // with 429: the Retry-After header (rounded up to seconds)

  static AdminReply Ok(nlohmann::json body, int status = 200) {
    return AdminReply{status, std::move(body), 0};
  }
  // The refusal for `code` (a wire protocol code), with the HTTP status that fits it.
  static AdminReply Refused(im::v1::Code code, std::string message, uint32_t retry_after_ms = 0);
  // The refusal a client would get for `status` (the answer of a request run as a client's).
  static AdminReply Refused(const im::v1::Status& status) {
    return Refused(status.code(), status.message(), status.retry_after_ms());
  }
};

// The HTTP status of an admin API answer carrying `code`.
int HttpStatusOf(im::v1::Code code);

}  // namespace im::logic
