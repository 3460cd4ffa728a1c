// RedisConnection against the test Redis (IM_TEST_REDIS): a pooled connection the server closed
// while it sat idle (as a Redis restart does) is replaced at its next use, and that call succeeds.
// And against a stand-in for a Redis still loading its data after a restart: unavailable for now,
// not an internal error.
#include "store/redis_connection.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <string_view>
#include <thread>

#include "store/tests/test_redis.h"

namespace im::store {
namespace {

TEST(RedisConnectionTest, EveryConnectionLogsInAsItsAclUserAndAWrongPasswordIsRefused) {
  testing::AclUser user;
  RedisOptions options = user.Options();
  options.connections = 2;
  RedisConnection redis(options);
  for (int call = 0; call < 2; ++call) {  // each pooled connection authenticates
    absl::StatusOr<RedisConnection::Reply> whoami = redis.Command({"ACL", "WHOAMI"});
    ASSERT_TRUE(whoami.ok()) << whoami.status();
    EXPECT_EQ(std::string_view((*whoami)->str, (*whoami)->len), user.name());
  }

  RedisOptions wrong = user.Options();
  wrong.password = "not-the-password";
  RedisConnection refused(wrong);
  absl::StatusOr<RedisConnection::Reply> reply = refused.Command({"PING"});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kPermissionDenied) << reply.status();
  EXPECT_NE(reply.status().message().find("AUTH refused"), std::string_view::npos);
  EXPECT_EQ(reply.status().message().find("not-the-password"), std::string_view::npos)
      << "the password is never echoed";
}

TEST(RedisConnectionTest, AConnectionTheServerClosedWhileIdleIsReplacedAndTheCallRunsOnce) {
  RedisOptions options = testing::TestRedisOptions();
  options.connections = 1;
  RedisConnection redis(options);
  absl::StatusOr<RedisConnection::Reply> id = redis.Command({"CLIENT", "ID"});
  ASSERT_TRUE(id.ok()) << id.status();
  testing::RedisAdmin admin;
  ASSERT_EQ(admin.Integer({"CLIENT", "KILL", "ID", std::to_string((*id)->integer)}), 1);

  const std::string key = testing::UniquePrefix() + "counter";
  absl::StatusOr<RedisConnection::Reply> incremented = redis.Command({"INCR", key});
  ASSERT_TRUE(incremented.ok()) << incremented.status();
  EXPECT_EQ((*incremented)->integer, 1);
  EXPECT_EQ(admin.Integer({"INCR", key}), 2) << "the command ran once";
  absl::StatusOr<RedisConnection::Reply> new_id = redis.Command({"CLIENT", "ID"});
  ASSERT_TRUE(new_id.ok());
  EXPECT_NE((*new_id)->integer, (*id)->integer) << "a fresh connection";
}

// A stalled server (a timeout, not a closed connection) may still run the command: it is not
// sent again, and the call fails once, after one timeout.
TEST(RedisConnectionTest, ATimeoutIsNotSentAgain) {
  RedisOptions options = testing::TestRedisOptions();
  options.connections = 1;
  options.timeout = std::chrono::milliseconds(300);
  RedisConnection redis(options);
  ASSERT_TRUE(redis.Command({"PING"}).ok());
  testing::RedisAdmin admin;
  const std::string key = testing::UniquePrefix() + "paused";
  ASSERT_TRUE(admin.Run({"CLIENT", "PAUSE", "1000", "WRITE"}).ok());
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<RedisConnection::Reply> stalled = redis.Command({"INCR", key});
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(stalled.status().code(), absl::StatusCode::kUnavailable) << stalled.status();
  EXPECT_LT(waited, std::chrono::milliseconds(550)) << "one timeout, not two";
  ASSERT_TRUE(admin.Run({"CLIENT", "UNPAUSE"}).ok());
  // The stalled INCR ran at most once (Redis may drop it with its closed connection).
  EXPECT_LE(admin.Integer({"INCR", key}), 2) << "the stalled INCR was sent twice";
}

TEST(RedisConnectionTest, AServerThatIsGoneStillFailsUnavailable) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.timeout = std::chrono::milliseconds(200);
  RedisConnection redis(options);
  EXPECT_EQ(redis.Command({"PING"}).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(redis.Command({"PING"}).status().code(), absl::StatusCode::kUnavailable);
}

// Answers every command as a Redis loading its data set does (after a restart, for as long as
// the data takes to load), one connection at a time.
class LoadingRedis {
 public:
  LoadingRedis() {
    listener_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof(address);
    EXPECT_EQ(bind(listener_, reinterpret_cast<sockaddr*>(&address), length), 0);
    EXPECT_EQ(listen(listener_, 4), 0);
    EXPECT_EQ(getsockname(listener_, reinterpret_cast<sockaddr*>(&address), &length), 0);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoadingRedis() {
    shutdown(listener_, SHUT_RDWR);  // wakes accept()
    thread_.join();
    close(listener_);
  }
  int port() const { return port_; }

 private:
  void Serve() {
    for (int client; (client = accept(listener_, nullptr, nullptr)) >= 0; close(client)) {
      constexpr std::string_view kLoading = "-LOADING Redis is loading the dataset in memory\r\n";
      char buffer[4096];
      // hiredis writes each command of a blocking call whole: one reply per read.
      while (read(client, buffer, sizeof(buffer)) > 0) {
        if (write(client, kLoading.data(), kLoading.size()) < 0) break;
      }
    }
  }

  int listener_ = -1;
  int port_ = 0;
  std::thread thread_;
};

// A login on a Redis that is still loading (its scripts are loaded on the connection first) used
// to fail INTERNAL; it is UNAVAILABLE, which clients retry after the hint.
TEST(RedisConnectionTest, ARedisStillLoadingItsDataIsUnavailableNotAnInternalError) {
  LoadingRedis loading;
  RedisOptions options;
  options.port = loading.port();
  options.connections = 1;
  RedisConnection redis(options);
  redis.LoadScript("return 1");
  absl::StatusOr<RedisConnection::Reply> reply = redis.Command({"GET", "k"});
  EXPECT_EQ(reply.status().code(), absl::StatusCode::kUnavailable) << reply.status();
  EXPECT_NE(reply.status().message().find("LOADING"), std::string_view::npos) << reply.status();
}

}  // namespace
}  // namespace im::store
