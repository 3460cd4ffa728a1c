#include "common/http_server_thread.h"

#include <httplib.h>

#include <chrono>
#include <utility>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace im::common {

HttpServerThread::HttpServerThread(std::unique_ptr<httplib::Server> server)
    : server_(std::move(server)) {}

absl::StatusOr<std::unique_ptr<HttpServerThread>> HttpServerThread::Start(
    std::unique_ptr<httplib::Server> server, const std::string& address, const char* what) {
  const size_t colon = address.rfind(':');
  int port = -1;
  if (colon == std::string::npos ||
      !absl::SimpleAtoi(absl::string_view(address).substr(colon + 1), &port) || port < 0 ||
      port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat(what, " address \"", address, "\": expected host:port"));
  }
  std::string host = address.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  if (host.empty()) host = "0.0.0.0";

  std::unique_ptr<HttpServerThread> self(new HttpServerThread(std::move(server)));
  int bound = -1;
  if (port == 0) {
    bound = self->server_->bind_to_any_port(host);
  } else if (self->server_->bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0 || bound > 65535) {
    return absl::UnavailableError(absl::StrCat(what, ": cannot listen on ", address));
  }
  self->port_ = static_cast<uint16_t>(bound);
  httplib::Server* raw = self->server_.get();
  self->thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // stop() is a no-op until the server runs: wait for it, so that the destructor cannot miss it
  // and then wait forever for the thread.
  for (int waited_ms = 0; !raw->is_running(); ++waited_ms) {
    if (waited_ms == 5'000) {
      return absl::InternalError(absl::StrCat(what, ": the HTTP server did not start"));
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return self;
}

HttpServerThread::~HttpServerThread() {
  server_->stop();
  if (thread_.joinable()) thread_.join();
}

}  // namespace im::common
