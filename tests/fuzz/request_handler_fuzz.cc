// libFuzzer target for logic's request handlers: any client frame, as a gateway forwards it,
// through RequestDispatcher::Dispatch into a logic node of this process on in-memory backends
// (the embedded node's wiring, without its gateway). Every handler a frame can name is reached:
// login, sends (single, group, recall, edit), sync, conversations, read, readers, resume, presence,
// typing, acks and the group requests.
//
// Input layout: 1 byte naming the caller (one of four users, so that state is shared: messages,
// groups, cursors), then the bytes of one im.v1.Frame; inputs that are not a Frame are skipped.
// Each request must be answered exactly once, within the gateway's deadline, by a frame with the
// request's id holding the response of its type or an Error; a request without a response (ack,
// typing) answers nothing.

#include "tests/fuzz/request_handler_fuzz.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "tests/fuzz/fuzz_node.h"

namespace {

using im::v1::Frame;

[[noreturn]] void Fail(const std::string& what) { im::fuzz::Fail("request_handler_fuzz", what); }

// Whether `response` answers `request` as the gateway expects: its id, and the request's
// response body (x_req -> x_resp) or an Error.
void CheckAnswer(const Frame& request, const std::optional<Frame>& response) {
  if (!response.has_value()) {
    if (request.has_ack_req() || request.has_typing_req()) return;
    Fail("no response to a request that has one: " + request.ShortDebugString());
  }
  if (response->id() != request.id()) Fail("response with another frame id");
  if (response->has_error()) return;
  const google::protobuf::FieldDescriptor* asked =
      Frame::descriptor()->FindFieldByNumber(static_cast<int>(request.body_case()));
  const google::protobuf::FieldDescriptor* answered =
      Frame::descriptor()->FindFieldByNumber(static_cast<int>(response->body_case()));
  if (asked == nullptr || answered == nullptr) Fail("a request or response without a body");
  std::string expected = asked->name();
  if (expected.ends_with("_req")) expected = expected.substr(0, expected.size() - 4) + "_resp";
  if (answered->name() != expected) {
    Fail("answered " + answered->name() + " to " + asked->name());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  Frame request;
  if (!request.ParseFromArray(data + 1, static_cast<int>(size - 1))) return 0;
  im::logic::RequestDispatcher& dispatcher = *im::fuzz::FuzzNode::Get().server().dispatcher();

  im::v1::Ingress entry;
  entry.set_id(1);
  entry.set_deadline_ms(im::common::UnixMillis() + im::fuzz::kDeadlineMs);
  im::v1::Caller* caller = entry.mutable_caller();
  caller->set_uid(im::fuzz::CallerUid(data[0]));
  caller->set_device("phone");
  caller->set_gateway_id("gw-fuzz");
  caller->set_conn_id(1 + data[0] % im::fuzz::kCallers);
  *entry.mutable_request() = request;

  auto answered = std::make_shared<std::promise<std::optional<Frame>>>();
  std::future<std::optional<Frame>> answer = answered->get_future();
  dispatcher.Dispatch(std::move(entry), [answered](std::optional<Frame> response) {
    answered->set_value(std::move(response));  // a second answer throws: a bug, found
  });
  // The deadline, and then some: a request is answered by then, if only DEADLINE_EXCEEDED.
  if (answer.wait_for(std::chrono::milliseconds(2 * im::fuzz::kDeadlineMs)) !=
      std::future_status::ready) {
    Fail("unanswered past its deadline: " + request.ShortDebugString());
  }
  CheckAnswer(request, answer.get());
  return 0;
}
