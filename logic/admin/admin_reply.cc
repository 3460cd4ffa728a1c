#include "logic/admin/admin_reply.h"

namespace im::logic {

int HttpStatusOf(im::v1::Code code) {
  switch (code) {
    case im::v1::OK:
      return 200;
    case im::v1::INVALID_ARGUMENT:
    case im::v1::INVALID_CONVERSATION:
    case im::v1::OUT_OF_RANGE:
      return 400;
    case im::v1::UNAUTHENTICATED:
      return 401;
    case im::v1::PERMISSION_DENIED:
    case im::v1::NOT_MEMBER:
    case im::v1::MUTED:
      return 403;
    case im::v1::NOT_FOUND:
      return 404;
    case im::v1::ALREADY_EXISTS:
    case im::v1::FAILED_PRECONDITION:
      return 409;
    case im::v1::BODY_TOO_LARGE:
      return 413;
    case im::v1::GROUP_FULL:
      return 422;
    case im::v1::RESOURCE_EXHAUSTED:
    case im::v1::TOO_MANY_IN_FLIGHT:
      return 429;
    // ABORTED: a send lost its seq to another and is to be repeated, as after UNAVAILABLE.
    case im::v1::ABORTED:
    case im::v1::UNAVAILABLE:
      return 503;
    case im::v1::DEADLINE_EXCEEDED:
      return 504;
    default:
      return 500;
  }
}

AdminReply AdminReply::Refused(im::v1::Code code, std::string message, uint32_t retry_after_ms) {
  nlohmann::json error = {{"code", im::v1::Code_Name(code)}, {"message", std::move(message)}};
  if (retry_after_ms != 0) error["retry_after_ms"] = retry_after_ms;
  return AdminReply{HttpStatusOf(code), {{"error", std::move(error)}}, retry_after_ms};
}

}  // namespace im::logic
