#include "logic/admin/admin_api.h"

#include <httplib.h>
#include <openssl/sha.h>

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "common/hmac.h"
#include "common/http_task_queue.h"
#include "common/logging.h"

namespace im::logic {
namespace {

std::string Sha256(std::string_view text) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  ::SHA256(reinterpret_cast<const unsigned char*>(text.data()), text.size(), digest);
  return std::string(reinterpret_cast<const char*>(digest), sizeof(digest));
}

// The path of a request target, split into percent-decoded segments ("/v1/a%2Fb" -> v1, a/b).
std::vector<std::string> PathSegments(std::string_view target) {
  const std::string_view path = target.substr(0, target.find('?'));
  std::vector<std::string> segments;
  const std::string_view relative = path.substr(path.starts_with('/') ? 1 : 0);
  for (absl::string_view segment :
       absl::StrSplit(absl::string_view(relative.data(), relative.size()), '/')) {
    segments.push_back(httplib::detail::decode_url(std::string(segment), false));
  }
  return segments;
}

void Write(const AdminReply& reply, httplib::Response& response) {
  response.status = reply.status;
  if (reply.status == 429) {
    const uint32_t seconds = std::max<uint32_t>(1, (reply.retry_after_ms + 999) / 1000);
    response.set_header("Retry-After", std::to_string(seconds));
  }
  response.set_content(reply.body.dump(), "application/json");
}

bool IsMultipart(const httplib::Request& request) {
  return absl::StartsWithIgnoreCase(request.get_header_value("Content-Type"), "multipart/");
}

// The code of an error httplib answered by itself (no handler ran, or the body was refused).
im::v1::Code CodeOfHttpError(int status) {
  switch (status) {
    case 401:
      return im::v1::UNAUTHENTICATED;
    case 404:
      return im::v1::NOT_FOUND;
    case 413:
      return im::v1::BODY_TOO_LARGE;
    case 400:
      return im::v1::INVALID_ARGUMENT;
    default:
      return status >= 500 ? im::v1::INTERNAL : im::v1::INVALID_ARGUMENT;
  }
}

// Calls that may wait for a request thread, per thread.
constexpr size_t kQueuedPerThread = 100;
constexpr uint32_t kShedRetryAfterMs = 1'000;

}  // namespace

AdminApi::AdminApi(const LogicOptions::AdminApi& options,
                   prometheus::Family<prometheus::Counter>* requests)
    : options_(options), key_digest_(Sha256("Bearer " + options.key)), requests_(requests) {}

AdminApi::~AdminApi() { listener_.reset(); }

bool AdminApi::Authorized(std::string_view authorization) const {
  // Digests of equal length: the comparison's time tells nothing about the key.
  return common::SameMac(Sha256(authorization), key_digest_);
}

bool AdminApi::RefuseUnrouted(const std::string& method, std::string_view target,
                              httplib::Response& response) const {
  std::vector<std::string> allowed;
  std::map<std::string, std::string> ignored;
  for (const char* other : {"GET", "POST", "PUT", "DELETE"}) {
    if (other != method && Match(other, target, &ignored) != nullptr) allowed.push_back(other);
  }
  if (allowed.empty()) {
    Write(AdminReply::Refused(im::v1::NOT_FOUND, "no such endpoint: see the OpenAPI document"),
          response);
    return false;
  }
  const std::string allow = absl::StrJoin(allowed, ", ");
  Write(AdminReply::Refused(im::v1::UNIMPLEMENTED,
                            absl::StrCat(method, " is not served here; allowed: ", allow)),
        response);
  response.set_header("Allow", allow);
  response.status = 405;
  return true;
}

const AdminApi::CompiledRoute* AdminApi::Match(const std::string& method, std::string_view target,
                                               std::map<std::string, std::string>* path) const {
  const std::vector<std::string> segments = PathSegments(target);
  for (const CompiledRoute& compiled : routes_) {
    if (compiled.route.method != method || compiled.segments.size() != segments.size()) continue;
    std::map<std::string, std::string> params;
    bool matches = true;
    for (size_t i = 0; i < segments.size() && matches; ++i) {
      const std::string& expected = compiled.segments[i];
      if (expected.starts_with(':')) {
        params[expected.substr(1)] = segments[i];
      } else {
        matches = expected == segments[i];
      }
    }
    if (matches) {
      *path = std::move(params);
      return &compiled;
    }
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<AdminApi>> AdminApi::Start(
    const LogicOptions::AdminApi& options, std::vector<Route> routes,
    prometheus::Family<prometheus::Counter>* requests) {
  std::unique_ptr<AdminApi> self(new AdminApi(options, requests));
  for (Route& route : routes) {
    std::vector<std::string> segments = PathSegments(route.pattern);
    self->routes_.push_back(CompiledRoute{std::move(route), std::move(segments)});
  }
  auto server = std::make_unique<httplib::Server>();
  // A call that waited for a thread as long as it may take is refused at once; so is one that
  // finds a hundred per thread waiting (each holds a connection).
  const size_t threads = options.threads;
  const std::chrono::milliseconds max_wait(options.timeout_ms);
  server->new_task_queue = [threads, max_wait] {
    return new common::SheddingTaskQueue(threads, threads * kQueuedPerThread, max_wait);
  };
  server->set_payload_max_length(options.max_body_bytes);
  // One request per connection. httplib leaves some bodies unread on the connection (sent with
  // GET, OPTIONS or TRACE, or multipart ones), where they would be read as the next request; it
  // does not close a connection whose answer says Connection: close. An admin call is rare next
  // to its work, so a new connection each costs little.
  server->set_keep_alive_max_count(1);
  server->set_read_timeout(std::chrono::seconds(5));
  server->set_write_timeout(std::chrono::seconds(5));
  AdminApi* raw = self.get();
  // Authentication comes after httplib read the body (at most max_body_bytes): refused before,
  // the body would be left on a keep-alive connection and read as the next request.
  auto handle = [raw](const httplib::Request& request, httplib::Response& response) {
    if (!raw->Authorized(request.get_header_value("Authorization"))) {
      raw->requests_->Add({{"operation", "unauthenticated"}, {"status", "401"}}).Increment();
      response.set_header("WWW-Authenticate", "Bearer");
      return Write(
          AdminReply::Refused(im::v1::UNAUTHENTICATED,
                              "an admin key is required: Authorization: Bearer <admin_api.key>"),
          response);
    }
    std::map<std::string, std::string> path;
    const CompiledRoute* route = raw->Match(request.method, request.target, &path);
    if (route == nullptr) {
      raw->RefuseUnrouted(request.method, request.target, response);
      return;
    }
    if (common::SheddingTaskQueue::ShouldShed()) {
      raw->requests_->Add({{"operation", route->route.operation}, {"status", "429"}}).Increment();
      return Write(AdminReply::Refused(im::v1::RESOURCE_EXHAUSTED,
                                       "the admin API is overloaded: calls wait too long",
                                       kShedRetryAfterMs),
                   response);
    }
    AdminReply reply = route->route.handler(Call{std::move(path), &request.params, request.body});
    raw->requests_
        ->Add({{"operation", route->route.operation}, {"status", std::to_string(reply.status)}})
        .Increment();
    if (reply.status >= 500) {
      spdlog::warn("admin API {} {}: {} {}", request.method, route->route.operation, reply.status,
                   reply.body.dump());
    }
    Write(reply, response);
  };
  server->Get(".*", handle);
  server->Post(".*", handle);
  server->Put(".*", handle);
  server->Delete(".*", handle);
  server->Patch(".*", handle);
  server->Options(".*", handle);
  // What httplib refused by itself (a body over the limit, an unknown method, a malformed
  // request) still answers a JSON Error; what a handler answered is left as it is.
  httplib::Server::HandlerWithResponse render_error = [raw](const httplib::Request& request,
                                                            httplib::Response& response) {
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    if (IsMultipart(request)) {  // httplib parses these itself, and routes none of them
      Write(AdminReply::Refused(im::v1::INVALID_ARGUMENT,
                                "the body must be JSON (Content-Type: application/json)"),
            response);
      return httplib::Server::HandlerResponse::Handled;
    }
    // A method httplib has no handler for (TRACE, CONNECT) on one of our paths.
    if ((response.status == 400 || response.status == 404) &&
        raw->RefuseUnrouted(request.method, request.target, response)) {
      return httplib::Server::HandlerResponse::Handled;
    }
    const int status = response.status;
    IM_LOG_RATE_LIMITED(spdlog::level::info, "admin API: {} {} refused by the HTTP layer: {}",
                        request.method, request.target, status);
    Write(AdminReply::Refused(CodeOfHttpError(status),
                              status == 413 ? "the request body is above admin_api.max_body_bytes"
                                            : "the request was refused by the HTTP layer"),
          response);
    response.status = status;  // httplib's own (e.g. 400 for a malformed request line)
    return httplib::Server::HandlerResponse::Handled;
  };
  server->set_error_handler(std::move(render_error));
  absl::StatusOr<std::unique_ptr<common::HttpServerThread>> listener =
      common::HttpServerThread::Start(std::move(server), options.listen, "admin API");
  if (!listener.ok()) return listener.status();
  self->listener_ = std::move(*listener);
  return self;
}

}  // namespace im::logic
