// libFuzzer target for the admin REST API (docs/openapi/admin-api.yaml): any request line and
// body, sent with the admin key over HTTP to the admin API of a logic node of this process on
// in-memory backends, so that routing, the path's percent-decoding, the strict JSON body reader
// (logic/admin/json_body) and every operation behind them are reached.
//
// Input layout: "<METHOD> <target>\n<body>", the seeds in tests/fuzz/corpus/admin_api. The
// method keeps its letters only; the target's bytes that may not stand in a request line (space,
// control, non-ASCII, '#') are sent percent-encoded. Inputs without the newline are skipped.
//
// Each request must be answered within the API's deadline, with a status the API documents (or
// that httplib gives a request it cannot route), and every body must be a JSON object; an error's
// {"error": {"code", "message"}} with strings. A 500 (a handler threw) is a finding.

#include <httplib.h>

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <string_view>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_node.h"

namespace {

constexpr char kAdminKey[] = "admin-fuzz-key-0123456789abcdef";

[[noreturn]] void Fail(const std::string& what) { im::fuzz::Fail("admin_api_fuzz", what); }

uint16_t AdminPort() {
  static const uint16_t port = [] {
    im::logic::LogicServer& server = im::fuzz::FuzzNode::Get([](im::logic::LogicOptions& options) {
                                       options.admin_api.listen = "127.0.0.1:0";
                                       options.admin_api.key = kAdminKey;
                                       options.admin_api.threads = 2;
                                     }).server();
    if (server.admin_api_port() == 0) Fail("the node serves no admin API");
    return server.admin_api_port();
  }();
  return port;
}

std::string MethodOf(std::string_view text) {
  std::string method;
  for (char c : text) {
    if (c >= 'A' && c <= 'Z') method.push_back(c);
  }
  return method;
}

std::string TargetOf(std::string_view text) {
  std::string target = "/";  // a request target starts with one
  for (unsigned char c : text) {
    if (c <= ' ' || c >= 0x7f || c == '#') {
      absl::StrAppendFormat(&target, "%%%02X", c);
    } else {
      target.push_back(static_cast<char>(c));
    }
  }
  return target;
}

// The statuses of docs/openapi/admin-api.yaml, and httplib's own for a request it cannot take.
bool DocumentedStatus(int status) {
  static const std::set<int> kStatuses = {200, 201, 204, 400, 401, 403, 404, 405,
                                          409, 413, 414, 422, 429, 503, 504};
  return kStatuses.contains(status);
}

void CheckAnswer(const httplib::Request& request, const httplib::Result& result) {
  const std::string what = absl::StrCat(request.method, " ", request.path);
  if (!result) Fail(absl::StrCat(what, ": no answer (", httplib::to_string(result.error()), ")"));
  const httplib::Response& response = result.value();
  if (!DocumentedStatus(response.status)) {
    Fail(absl::StrCat(what, ": status ", response.status, " ", response.body));
  }
  // A HEAD's answer has no body, whatever its status; after a CONNECT's, httplib's client reads
  // none (it expects a tunnel), though the API sends its JSON Error (405) as for TRACE.
  if (request.method == "HEAD" || request.method == "CONNECT") return;
  if (response.body.empty()) {
    // httplib answers a request it cannot parse or route without a body of ours.
    if (response.status == 204 || response.status == 400 || response.status == 414) return;
    Fail(absl::StrCat(what, ": status ", response.status, " without a body"));
  }
  const nlohmann::json body = nlohmann::json::parse(response.body, nullptr, false);
  if (!body.is_object())
    Fail(absl::StrCat(what, ": a body that is no JSON object: ", response.body));
  if (response.status < 400) return;
  const nlohmann::json* error = body.contains("error") ? &body["error"] : nullptr;
  if (error == nullptr || !error->is_object() || !(*error)["code"].is_string() ||
      !(*error)["message"].is_string()) {
    Fail(absl::StrCat(what, ": an error without its code and message: ", response.body));
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t line_end = input.find('\n');
  if (line_end == std::string_view::npos) return 0;
  const std::string_view line = input.substr(0, line_end);
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;

  httplib::Request request;
  request.method = MethodOf(line.substr(0, space));
  if (request.method.empty() || request.method.size() > 10) return 0;
  std::string_view path = line.substr(space + 1);
  if (path.starts_with('/')) path.remove_prefix(1);
  request.path = TargetOf(path);
  request.body = std::string(input.substr(line_end + 1));
  request.set_header("Authorization", absl::StrCat("Bearer ", kAdminKey));
  if (!request.body.empty()) request.set_header("Content-Type", "application/json");

  httplib::Client client("127.0.0.1", AdminPort());
  client.set_url_encode(false);    // the target is sent as made above
  client.set_read_timeout(15, 0);  // past the API's 5 s deadline: an answer is due by then
  CheckAnswer(request, client.send(request));
  return 0;
}
