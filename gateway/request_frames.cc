#include "gateway/request_frames.h"

#include "common/retry_hint.h"

namespace im::gateway {
namespace {

const google::protobuf::FieldDescriptor* BodyField(im::v1::Frame::BodyCase body) {
  return im::v1::Frame::descriptor()->FindFieldByNumber(static_cast<int>(body));
}

}  // namespace

bool IsClientRequest(const im::v1::Frame& frame) {
  const google::protobuf::FieldDescriptor* field = BodyField(frame.body_case());
  return field != nullptr && field->name().ends_with("_req");
}

// A send (a recall or edit too) is deduplicated by client_msg_id, cursors only move forward, a
// resume token's renewal keeps its claims, a presence subscription replaces the device's list,
// the rest only read. Group create, join, leave and
// set-role are not (a repeat could create a second group or answer "already a member"), nor is a
// resume (its first page spends the token), so a client retries those itself. A type not listed
// is not repeated.
bool IsIdempotent(const im::v1::Frame& request) {
  using F = im::v1::Frame;
  switch (request.body_case()) {
    // A login registers the session of its connection: again, it finds the session already
    // there (same connection: nothing is kicked) and answers the same.
    case F::kLoginReq:
    case F::kSendReq:
    case F::kAckReq:
    case F::kSyncReq:
    case F::kConversationsReq:
    case F::kReadReq:
    case F::kGroupMembersReq:
    case F::kReadersReq:
    case F::kResumeRenewReq:
    case F::kPresenceSubscribeReq:
      return true;
    default:
      return false;
  }
}

std::optional<im::v1::Frame> FailureResponse(const im::v1::Frame& request, im::v1::Code code,
                                             const std::string& message) {
  return FailureResponse(request.id(), request.body_case(), code, message);
}

std::optional<im::v1::Frame> FailureResponse(uint64_t frame_id,
                                             im::v1::Frame::BodyCase request_body,
                                             im::v1::Code code, const std::string& message) {
  const google::protobuf::Descriptor* descriptor = im::v1::Frame::descriptor();
  const google::protobuf::FieldDescriptor* request_field = BodyField(request_body);
  if (request_field == nullptr) return std::nullopt;
  std::string name = request_field->name();
  if (name.size() > 4 && name.ends_with("_req")) name = name.substr(0, name.size() - 4) + "_resp";
  const google::protobuf::FieldDescriptor* response_field = descriptor->FindFieldByName(name);
  if (response_field == nullptr) return std::nullopt;
  im::v1::Frame frame;
  frame.set_id(frame_id);
  google::protobuf::Message* body = frame.GetReflection()->MutableMessage(&frame, response_field);
  const google::protobuf::FieldDescriptor* status_field =
      body->GetDescriptor()->FindFieldByName("status");
  if (status_field == nullptr) return std::nullopt;
  auto* status =
      static_cast<im::v1::Status*>(body->GetReflection()->MutableMessage(body, status_field));
  status->set_code(code);
  status->set_message(message);
  status->set_retry_after_ms(common::RetryAfterMsFor(code));
  return frame;
}

}  // namespace im::gateway
