#include "common/http_client.h"

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/http_server_thread.h"
#include "common/tls/testing/test_certificates.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace im::common {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

// Bounds every wait in these tests: a hang fails the test instead of blocking it.
constexpr auto kPatience = std::chrono::seconds(10);

// What the server saw of one request.
struct Received {
  std::string path;
  std::string body;
  std::string content_type;
  std::string custom_header;
  int remote_port = -1;  // one per connection
  Clock::time_point arrived;
};

// A real HTTP server on 127.0.0.1, port 0:
//   /echo  200 with "pong:" + the body;   /fail  500;   /big  200 with 10,000 bytes;
//   /hold  answers once Release() is called (or after 5 s), for timeouts and aborts.
class TestServer {
 public:
  // `server`: an httplib::SSLServer for https URLs.
  explicit TestServer(std::unique_ptr<httplib::Server> server = std::make_unique<httplib::Server>(),
                      std::string scheme = "http")
      : scheme_(std::move(scheme)) {
    server->set_keep_alive_timeout(1);
    // Else its response's head and body wait on Nagle and the client's delayed ACK (40 ms).
    server->set_tcp_nodelay(true);
    server->Post("/echo", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      res.set_content("pong:" + req.body, "text/plain");
    });
    server->Post("/fail", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      res.status = 500;
      res.set_content("boom", "text/plain");
    });
    server->Post("/big", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      res.set_content(std::string(10'000, 'x'), "text/plain");
    });
    server->Post("/hold", [this](const httplib::Request& req, httplib::Response& res) {
      Record(req);
      std::unique_lock<std::mutex> lock(mutex_);
      released_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return released_; });
      res.set_content("late", "text/plain");
    });
    auto started = HttpServerThread::Start(std::move(server), "127.0.0.1:0", "test server");
    EXPECT_TRUE(started.ok()) << started.status();
    if (started.ok()) thread_ = std::move(*started);
  }
  // Lets held requests finish first: the server's threads join them.
  ~TestServer() {
    Release();
    thread_.reset();
  }

  std::string Url(const std::string& path) const {
    return absl::StrCat(scheme_, "://127.0.0.1:", thread_ ? thread_->port() : 0, path);
  }

  void Release() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released_ = true;
    }
    released_cv_.notify_all();
  }

  std::vector<Received> received() const {
    std::lock_guard<std::mutex> lock(mutex_);
    return received_;
  }

  // Waits until `n` requests have arrived (kPatience at most).
  bool WaitForRequests(size_t n) {
    std::unique_lock<std::mutex> lock(mutex_);
    return received_cv_.wait_for(lock, kPatience, [&] { return received_.size() >= n; });
  }

 private:
  void Record(const httplib::Request& req) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      received_.push_back(Received{req.path, req.body, req.get_header_value("Content-Type"),
                                   req.get_header_value("X-Test"), req.remote_port, Clock::now()});
    }
    received_cv_.notify_all();
  }

  const std::string scheme_;
  mutable std::mutex mutex_;
  std::condition_variable received_cv_;
  std::condition_variable released_cv_;
  std::vector<Received> received_;
  bool released_ = false;
  std::unique_ptr<HttpServerThread> thread_;
};

HttpRequest Request(std::string url, std::string body = "{}") {
  HttpRequest request;
  request.url = std::move(url);
  request.body = std::move(body);
  return request;
}

// Posts and waits for the outcome on the client's thread.
HttpResponse PostAndWait(HttpClient& client, HttpRequest request, milliseconds delay = {}) {
  std::promise<HttpResponse> outcome;
  std::future<HttpResponse> future = outcome.get_future();
  client.Post(std::move(request), delay,
              [outcome = std::move(outcome)](HttpResponse response) mutable {
                outcome.set_value(std::move(response));
              });
  if (future.wait_for(kPatience) != std::future_status::ready) {
    HttpResponse none;
    none.error = "test: no outcome in time";
    return none;
  }
  return future.get();
}

// Counts the outcomes of many posts, by index, on any thread.
class Outcomes {
 public:
  explicit Outcomes(size_t n) : calls_(n, 0), responses_(n) {}

  HttpClient::Done For(size_t i) {
    return [this, i](HttpResponse response) {
      {
        std::lock_guard<std::mutex> lock(mutex_);
        ++calls_[i];
        ++total_;
        responses_[i] = std::move(response);
      }
      cv_.notify_all();
    };
  }

  bool WaitForAll() {
    std::unique_lock<std::mutex> lock(mutex_);
    return cv_.wait_for(lock, kPatience, [this] { return total_ >= calls_.size(); });
  }

  int calls(size_t i) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return calls_[i];
  }
  HttpResponse response(size_t i) const {
    std::lock_guard<std::mutex> lock(mutex_);
    return responses_[i];
  }

 private:
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::vector<int> calls_;
  std::vector<HttpResponse> responses_;
  size_t total_ = 0;
};

// A port with nothing listening: the socket is bound (so no one else takes the port) but never
// listens, and connections to it are refused.
class ClosedPort {
 public:
  ClosedPort() : fd_(socket(AF_INET, SOCK_STREAM, 0)) {
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(addr);
    EXPECT_EQ(bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    EXPECT_EQ(getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &length), 0);
    port_ = ntohs(addr.sin_port);
  }
  ~ClosedPort() { close(fd_); }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;

  uint16_t port() const { return port_; }

 private:
  int fd_;
  uint16_t port_ = 0;
};

HttpClient::Options Named(const char* name) {
  HttpClient::Options options;
  options.name = name;
  return options;
}

TEST(HttpClientTest, PostsBodyAndHeadersAndReturnsTheResponse) {
  TestServer server;
  HttpClient client(Named("http-test"));
  HttpRequest request = Request(server.Url("/echo"), R"({"event":"x"})");
  request.headers.emplace_back("X-Test", "yes");

  const HttpResponse response = PostAndWait(client, std::move(request));

  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, R"(pong:{"event":"x"})");
  EXPECT_EQ(response.error, "");
  EXPECT_FALSE(response.timed_out);
  const std::vector<Received> received = server.received();
  ASSERT_EQ(received.size(), 1u);
  EXPECT_EQ(received[0].body, R"({"event":"x"})");
  EXPECT_EQ(received[0].content_type, "application/json");
  EXPECT_EQ(received[0].custom_header, "yes");
  EXPECT_EQ(client.queued(), 0u);
}

TEST(HttpClientTest, KeepsTheCallersContentType) {
  TestServer server;
  HttpClient client(Named("http-test"));
  HttpRequest request = Request(server.Url("/echo"), "a=1");
  request.headers.emplace_back("content-type", "application/x-www-form-urlencoded");

  EXPECT_EQ(PostAndWait(client, std::move(request)).status, 200);

  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_EQ(server.received()[0].content_type, "application/x-www-form-urlencoded");
}

TEST(HttpClientTest, ServerErrorComesBackAsItsStatus) {
  TestServer server;
  HttpClient client(Named("http-test"));

  const HttpResponse response = PostAndWait(client, Request(server.Url("/fail")));

  EXPECT_EQ(response.status, 500);
  EXPECT_EQ(response.body, "boom");
  EXPECT_EQ(response.error, "");
}

TEST(HttpClientTest, SlowServerTimesOut) {
  TestServer server;
  HttpClient client(Named("http-test"));
  HttpRequest request = Request(server.Url("/hold"));
  request.timeout = milliseconds(200);

  const Clock::time_point start = Clock::now();
  const HttpResponse response = PostAndWait(client, std::move(request));

  EXPECT_EQ(response.status, 0);
  EXPECT_TRUE(response.timed_out);
  EXPECT_EQ(response.error, "timed out after 200 ms");
  EXPECT_GE(Clock::now() - start, milliseconds(200));
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));  // the server holds it for 5
}

TEST(HttpClientTest, RefusedConnectionIsAnError) {
  ClosedPort closed;
  HttpClient client(Named("http-test"));

  const HttpResponse response =
      PostAndWait(client, Request(absl::StrCat("http://127.0.0.1:", closed.port(), "/x")));

  EXPECT_EQ(response.status, 0);
  EXPECT_FALSE(response.timed_out);
  EXPECT_NE(response.error, "");
  EXPECT_NE(response.error, "test: no outcome in time");
}

TEST(HttpClientTest, BadRequestsFailWithoutASound) {
  TestServer server;
  HttpClient client(Named("http-test"));
  HttpRequest split = Request(server.Url("/echo"));
  split.headers.emplace_back("X-Test", "a\r\nX-Injected: 1");

  for (const std::string url : {"not a url", "http://", "ftp://127.0.0.1/x", "http://[::1"}) {
    const HttpResponse response = PostAndWait(client, Request(url));
    EXPECT_EQ(response.status, 0) << url;
    EXPECT_NE(response.error, "") << url;
  }
  EXPECT_EQ(PostAndWait(client, std::move(split)).error, "invalid header name or value");
  EXPECT_TRUE(server.received().empty());
}

TEST(HttpClientTest, DelayIsHonored) {
  TestServer server;
  HttpClient client(Named("http-test"));

  const Clock::time_point posted = Clock::now();
  const HttpResponse response =
      PostAndWait(client, Request(server.Url("/echo")), milliseconds(300));

  EXPECT_EQ(response.status, 200);
  ASSERT_EQ(server.received().size(), 1u);
  EXPECT_GE(server.received()[0].arrived - posted, milliseconds(300));
  EXPECT_LT(server.received()[0].arrived - posted, std::chrono::seconds(3));
}

TEST(HttpClientTest, ManyConcurrentPostsEachCompleteOnce) {
  TestServer server;
  HttpClient::Options options = Named("http-test");
  // Fewer connections than the server has threads: httplib keeps a thread per kept-alive one.
  options.max_connections_per_host = 4;
  constexpr size_t kPosts = 200;
  Outcomes outcomes(kPosts);
  HttpClient client(options);

  for (size_t i = 0; i < kPosts; ++i) {
    ASSERT_TRUE(client.Post(Request(server.Url("/echo"), absl::StrCat(i)), {}, outcomes.For(i)));
  }

  ASSERT_TRUE(outcomes.WaitForAll());
  client.Stop();
  for (size_t i = 0; i < kPosts; ++i) {
    EXPECT_EQ(outcomes.calls(i), 1) << i;
    EXPECT_EQ(outcomes.response(i).status, 200) << i;
    EXPECT_EQ(outcomes.response(i).body, absl::StrCat("pong:", i)) << i;
  }
  EXPECT_EQ(server.received().size(), kPosts);
  EXPECT_EQ(client.queued(), 0u);
}

TEST(HttpClientTest, InFlightLimitRunsTheRestInOrderOnOneConnection) {
  TestServer server;
  HttpClient::Options options = Named("http-test");
  options.max_in_flight = 1;
  constexpr size_t kPosts = 5;
  Outcomes outcomes(kPosts);
  HttpClient client(options);

  for (size_t i = 0; i < kPosts; ++i) {
    ASSERT_TRUE(client.Post(Request(server.Url("/echo"), absl::StrCat(i)), {}, outcomes.For(i)));
  }

  ASSERT_TRUE(outcomes.WaitForAll());
  const std::vector<Received> received = server.received();
  ASSERT_EQ(received.size(), kPosts);
  for (size_t i = 0; i < kPosts; ++i) {
    EXPECT_EQ(received[i].body, absl::StrCat(i));
    EXPECT_EQ(received[i].remote_port, received[0].remote_port) << i;
  }
}

TEST(HttpClientTest, StopFailsDelayedAndRunningRequests) {
  TestServer server;
  constexpr size_t kDelayed = 3;
  Outcomes outcomes(kDelayed + 1);
  HttpClient client(Named("http-test"));
  for (size_t i = 0; i < kDelayed; ++i) {
    ASSERT_TRUE(
        client.Post(Request(server.Url("/echo")), std::chrono::seconds(30), outcomes.For(i)));
  }
  ASSERT_TRUE(client.Post(Request(server.Url("/hold")), {}, outcomes.For(kDelayed)));
  ASSERT_TRUE(server.WaitForRequests(1));  // the held one is running
  EXPECT_EQ(client.queued(), kDelayed + 1);

  const Clock::time_point start = Clock::now();
  client.Stop();

  EXPECT_LT(Clock::now() - start, std::chrono::seconds(4));  // did not wait for the server
  for (size_t i = 0; i <= kDelayed; ++i) {
    EXPECT_EQ(outcomes.calls(i), 1) << i;
    EXPECT_EQ(outcomes.response(i).status, 0) << i;
    EXPECT_EQ(outcomes.response(i).error, "client stopped") << i;
  }
  EXPECT_EQ(client.queued(), 0u);
  client.Stop();  // idempotent
  for (size_t i = 0; i <= kDelayed; ++i) EXPECT_EQ(outcomes.calls(i), 1) << i;
}

TEST(HttpClientTest, PostAfterStopIsRefusedAtOnce) {
  HttpClient client(Named("http-test"));
  client.Stop();
  bool ran = false;
  std::thread::id ran_on;
  HttpResponse outcome;

  const bool accepted =
      client.Post(Request("http://127.0.0.1:1/x"), {}, [&](HttpResponse response) {
        ran = true;
        ran_on = std::this_thread::get_id();
        outcome = std::move(response);
      });

  EXPECT_FALSE(accepted);
  EXPECT_TRUE(ran);
  EXPECT_EQ(ran_on, std::this_thread::get_id());
  EXPECT_EQ(outcome.status, 0);
  EXPECT_EQ(outcome.error, "client stopped");
}

TEST(HttpClientTest, QueueFullRefusesPastMaxQueued) {
  HttpClient::Options options = Named("http-test");
  options.max_queued = 2;
  auto client = std::make_unique<HttpClient>(options);
  Outcomes outcomes(3);
  const std::string url = "http://127.0.0.1:1/x";  // never reached: the posts are delayed

  EXPECT_TRUE(client->Post(Request(url), std::chrono::seconds(30), outcomes.For(0)));
  EXPECT_TRUE(client->Post(Request(url), std::chrono::seconds(30), outcomes.For(1)));
  EXPECT_FALSE(client->Post(Request(url), std::chrono::seconds(30), outcomes.For(2)));

  EXPECT_EQ(outcomes.calls(2), 1);
  EXPECT_EQ(outcomes.response(2).error, "queue full");
  EXPECT_EQ(client->queued(), 2u);
  client.reset();
  EXPECT_EQ(outcomes.calls(0), 1);
  EXPECT_EQ(outcomes.response(0).error, "client stopped");
  EXPECT_EQ(outcomes.calls(1), 1);
  EXPECT_EQ(outcomes.calls(2), 1);
}

TEST(HttpClientTest, LargeResponseIsCutToTheLimit) {
  TestServer server;
  HttpClient::Options options = Named("http-test");
  options.max_response_bytes = 1000;
  HttpClient client(options);

  const HttpResponse response = PostAndWait(client, Request(server.Url("/big")));

  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.body, std::string(1000, 'x'));
  EXPECT_EQ(response.error, "");
}

TEST(HttpClientTest, HttpsTrustsTheGivenCaFileOnly) {
  const std::string dir =
      std::filesystem::temp_directory_path() / ("im-http-client-" + std::to_string(::getpid()));
  absl::StatusOr<tls::testing::TestCertificates> files =
      tls::testing::TestCertificates::Create(dir);
  ASSERT_TRUE(files.ok()) << files.status();
  TestServer server(
      std::make_unique<httplib::SSLServer>(files->cert_file.c_str(), files->key_file.c_str()),
      "https");
  HttpClient::Options options = Named("http-test");
  options.ca_file = files->ca_file;
  HttpClient trusting(options);
  HttpClient system_roots(Named("http-test"));

  EXPECT_EQ(PostAndWait(trusting, Request(server.Url("/echo"), "tls")).body, "pong:tls");
  const HttpResponse refused = PostAndWait(system_roots, Request(server.Url("/echo")));
  EXPECT_EQ(refused.status, 0);
  EXPECT_NE(refused.error, "");
  EXPECT_EQ(server.received().size(), 1u);
  std::filesystem::remove_all(dir);
}

TEST(HttpClientTest, ADoneMayPostAgain) {
  TestServer server;
  HttpClient client(Named("http-test"));
  std::promise<HttpResponse> second;
  std::future<HttpResponse> second_done = second.get_future();
  const std::string url = server.Url("/echo");

  client.Post(Request(url, "1"), {},
              [&client, url, second = std::move(second)](HttpResponse) mutable {
                client.Post(Request(url, "2"), {},
                            [second = std::move(second)](HttpResponse response) mutable {
                              second.set_value(std::move(response));
                            });
              });

  ASSERT_EQ(second_done.wait_for(kPatience), std::future_status::ready);
  EXPECT_EQ(second_done.get().body, "pong:2");
}

}  // namespace
}  // namespace im::common
