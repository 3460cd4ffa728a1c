#include "common/admin_http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/strings/str_cat.h"
#include "common/metrics.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace im::common {
namespace {

using ::testing::HasSubstr;

// Closes a socket at the end of a scope.
class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in Loopback(uint16_t port) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return addr;
}

// A blocking HTTP/1.0 GET; the server closes the connection after the response, which ends the
// read. Timeouts keep a broken server from hanging the test. Returns the whole response, or an
// empty string on a socket error.
std::string HttpGet(uint16_t port, const std::string& path) {
  Fd fd(socket(AF_INET, SOCK_STREAM, 0));
  if (fd.get() < 0) return "";
  timeval timeout{};
  timeout.tv_sec = 5;
  setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
  setsockopt(fd.get(), SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
  const sockaddr_in addr = Loopback(port);
  if (connect(fd.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) return "";
  const std::string request = absl::StrCat("GET ", path, " HTTP/1.0\r\nHost: 127.0.0.1:", port,
                                           "\r\nConnection: close\r\n\r\n");
  size_t sent = 0;
  while (sent < request.size()) {
    const ssize_t n = send(fd.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return "";
    sent += static_cast<size_t>(n);
  }
  std::string response;
  char buffer[4096];
  for (;;) {
    const ssize_t n = recv(fd.get(), buffer, sizeof(buffer), 0);
    if (n < 0) return "";
    if (n == 0) break;
    response.append(buffer, static_cast<size_t>(n));
  }
  return response;
}

TEST(AdminHttpServerTest, ServesRegisteredCounters) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildCounter()
                     .Name("im_test_events_total")
                     .Help("Events seen by the test.")
                     .Register(*registry);
  family.Add({{"kind", "login"}}).Increment(3);

  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_NE((*server)->port(), 0);

  const std::string response = HttpGet((*server)->port(), "/metrics");
  EXPECT_THAT(response, ::testing::StartsWith("HTTP/1."));
  EXPECT_THAT(response, HasSubstr(" 200 OK\r\n"));
  EXPECT_THAT(response, HasSubstr("\nim_test_events_total{kind=\"login\"} 3\n"));
}

TEST(AdminHttpServerTest, HistogramWithLatencyBuckets) {
  auto registry = std::make_shared<prometheus::Registry>();
  auto& family = prometheus::BuildHistogram()
                     .Name("im_test_latency_seconds")
                     .Help("Latency seen by the test.")
                     .Register(*registry);
  family.Add({}, LatencyBuckets()).Observe(0.003);

  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start("127.0.0.1:0", registry);
  ASSERT_TRUE(server.ok()) << server.status();
  const std::string response = HttpGet((*server)->port(), "/metrics");
  EXPECT_THAT(response, HasSubstr("\nim_test_latency_seconds_bucket{le=\"0.0025\"} 0\n"));
  EXPECT_THAT(response, HasSubstr("\nim_test_latency_seconds_bucket{le=\"0.005\"} 1\n"));
  EXPECT_THAT(response, HasSubstr("\nim_test_latency_seconds_count 1\n"));
}

TEST(AdminHttpServerTest, AddressInUseIsAnError) {
  // Hold a listening socket on an ephemeral port and ask the server for the same one.
  Fd holder(socket(AF_INET, SOCK_STREAM, 0));
  ASSERT_GE(holder.get(), 0);
  sockaddr_in addr = Loopback(0);
  ASSERT_EQ(bind(holder.get(), reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(listen(holder.get(), 1), 0);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(getsockname(holder.get(), reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string address = absl::StrCat("127.0.0.1:", ntohs(addr.sin_port));

  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start(address, std::make_shared<prometheus::Registry>());
  EXPECT_EQ(server.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(server.status().message(), HasSubstr(address));
}

TEST(AdminHttpServerTest, NullRegistryIsAnError) {
  EXPECT_EQ(AdminHttpServer::Start("127.0.0.1:0", nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AdminHttpServerTest, HealthChecksAnswer200Or503WithTheirDetail) {
  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start("127.0.0.1:0", std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.ok()) << server.status();
  const uint16_t port = (*server)->port();
  // No checks yet: alive (the server answers), not ready.
  EXPECT_THAT(HttpGet(port, "/healthz"), HasSubstr(" 200 OK\r\n"));
  std::string ready = HttpGet(port, "/readyz");
  EXPECT_THAT(ready, HasSubstr(" 503 "));
  EXPECT_THAT(ready, HasSubstr("\r\n\r\nstarting\n"));

  (*server)->SetReadiness([] { return HealthReport{false, "redis: connection refused"}; });
  (*server)->SetLiveness([] { return HealthReport{false, "worker 1: no answer"}; });
  ready = HttpGet(port, "/readyz");
  EXPECT_THAT(ready, HasSubstr(" 503 "));
  EXPECT_THAT(ready, HasSubstr("\r\n\r\nredis: connection refused\n"));
  const std::string live = HttpGet(port, "/healthz");
  EXPECT_THAT(live, HasSubstr(" 503 "));
  EXPECT_THAT(live, HasSubstr("worker 1: no answer"));

  (*server)->SetReadiness([] { return HealthReport{}; });
  ready = HttpGet(port, "/readyz");
  EXPECT_THAT(ready, HasSubstr(" 200 OK\r\n"));
  EXPECT_THAT(ready, HasSubstr("\r\n\r\nok\n"));
}

TEST(AdminHttpServerTest, UnknownPathIs404) {
  absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
      AdminHttpServer::Start("127.0.0.1:0", std::make_shared<prometheus::Registry>());
  ASSERT_TRUE(server.ok()) << server.status();
  EXPECT_THAT(HttpGet((*server)->port(), "/nope"), HasSubstr(" 404 "));
}

TEST(AdminHttpServerTest, BadAddressIsAnError) {
  EXPECT_EQ(
      AdminHttpServer::Start("127.0.0.1", std::make_shared<prometheus::Registry>()).status().code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(AdminHttpServer::Start("127.0.0.1:70000", std::make_shared<prometheus::Registry>())
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(AdminHttpServerTest, StopsAtOnce) {
  const auto started = std::chrono::steady_clock::now();
  {
    absl::StatusOr<std::unique_ptr<AdminHttpServer>> server =
        AdminHttpServer::Start("127.0.0.1:0", std::make_shared<prometheus::Registry>());
    ASSERT_TRUE(server.ok()) << server.status();
    EXPECT_THAT(HttpGet((*server)->port(), "/healthz"), HasSubstr(" 200 OK\r\n"));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(1));
}

}  // namespace
}  // namespace im::common
