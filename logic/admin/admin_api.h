#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "common/http_server_thread.h"
#include "logic/admin/admin_reply.h"
#include "logic/logic_options.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"

namespace httplib {
struct Response;
}

namespace im::logic {

// The admin REST API's HTTP side (docs/openapi/admin-api.yaml): JSON over HTTP on
// admin_api.listen, each request authenticated by the admin key before its body is read
// ("Authorization: Bearer <key>", compared in constant time; else 401), bodies above
// admin_api.max_body_bytes refused 413, every error a JSON Error with a wire protocol Code name.
// Routes match the request's path segment by segment, each segment percent-decoded, so that a
// uid holding '/' or '%' is one segment.
class AdminApi {
 public:
  // One call as a handler sees it.
  struct Call {
    std::map<std::string, std::string> path;  // the route's ":name" segments, decoded
    const std::multimap<std::string, std::string>* query;
    std::string_view body;
  };
  using Handler = std::function<AdminReply(const Call& call)>;
  struct Route {
    std::string method;     // "GET", "POST", "PUT", "DELETE"
    std::string pattern;    // "/v1/users/:uid/state"
    std::string operation;  // the OpenAPI operationId, for logs and metrics
    Handler handler;
  };

  // Serves `routes` until destroyed. `requests` counts calls by operation and HTTP status.
  static absl::StatusOr<std::unique_ptr<AdminApi>> Start(
      const LogicOptions::AdminApi& options, std::vector<Route> routes,
      prometheus::Family<prometheus::Counter>* requests);
  ~AdminApi();

  uint16_t port() const { return listener_->port(); }

 private:
  struct CompiledRoute {
    Route route;
    std::vector<std::string> segments;
  };
  // The route for `method` and the raw request target, with its path parameters; null: none.
  const CompiledRoute* Match(const std::string& method, std::string_view target,
                             std::map<std::string, std::string>* path) const;
  bool Authorized(std::string_view authorization) const;
  // Answers a request no route takes: 405 with Allow when its path is served with other methods
  // (then true), else 404.
  bool RefuseUnrouted(const std::string& method, std::string_view target,
                      httplib::Response& response) const;

  explicit AdminApi(const LogicOptions::AdminApi& options,
                    prometheus::Family<prometheus::Counter>* requests);

  const LogicOptions::AdminApi options_;
  std::string key_digest_;  // SHA-256 of "Bearer <key>": compared as a MAC
  std::vector<CompiledRoute> routes_;
  prometheus::Family<prometheus::Counter>* requests_;
  std::unique_ptr<common::HttpServerThread> listener_;  // last: stopped first
};

}  // namespace im::logic
