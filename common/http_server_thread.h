#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace im::common {

// An httplib::Server serving on "host:port" (port 0: a free one; "[::1]:p" for IPv6; an empty
// host: every address) from a thread of its own. Destroying it stops the server and joins the
// thread at once.
class HttpServerThread {
 public:
  // `server` has its routes and settings; `what` names it in errors ("metrics", "admin API").
  static absl::StatusOr<std::unique_ptr<HttpServerThread>> Start(
      std::unique_ptr<httplib::Server> server, const std::string& address, const char* what);
  ~HttpServerThread();
  HttpServerThread(const HttpServerThread&) = delete;
  HttpServerThread& operator=(const HttpServerThread&) = delete;

  uint16_t port() const { return port_; }

 private:
  explicit HttpServerThread(std::unique_ptr<httplib::Server> server);

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  uint16_t port_ = 0;
};

}  // namespace im::common
