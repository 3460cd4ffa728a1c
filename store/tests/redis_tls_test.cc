// Redis over TLS through RedisTlsBridge, against the test Redis's TLS port (IM_TEST_REDIS_TLS,
// its certificate signed by the CA in IM_TEST_REDIS_TLS_CA; scripts/test.sh starts it): the
// pooled and the asynchronous clients log in as their ACL user over TLS, and a server whose
// certificate another CA signed, one that carries another name, a plain port and a missing CA
// file are refused with the reason.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/tls/testing/test_certificates.h"
#include "store/redis_async_client.h"
#include "store/redis_connection.h"
#include "store/redis_tls_bridge.h"
#include "store/tests/test_loop.h"
#include "store/tests/test_redis.h"
#include "store/tests/unique_prefix.h"

namespace im::store {
namespace {

using ::testing::HasSubstr;

// CLIENT INFO's laddr: the server's own address of the connection asking.
std::string LocalAddressOf(std::string_view client_info) {
  const size_t at = client_info.find("laddr=");
  if (at == std::string_view::npos) return "";
  const size_t end = client_info.find(' ', at);
  return std::string(client_info.substr(at + 6, end - at - 6));
}

std::string TlsAddress() {
  const RedisOptions options = testing::TestRedisTlsOptions();
  return options.host + ":" + std::to_string(options.port);
}

TEST(RedisTlsTest, PooledConnectionsReachTheTlsPortAndLogIn) {
  RedisOptions options = testing::TestRedisTlsOptions();
  options.connections = 2;
  RedisConnection redis(options);
  for (int call = 0; call < 2; ++call) {
    absl::StatusOr<RedisConnection::Reply> whoami = redis.Command({"ACL", "WHOAMI"});
    ASSERT_TRUE(whoami.ok()) << whoami.status();
    EXPECT_EQ(RedisConnection::TextOf(whoami->get()), options.username);
  }
  absl::StatusOr<RedisConnection::Reply> info = redis.Command({"CLIENT", "INFO"});
  ASSERT_TRUE(info.ok()) << info.status();
  EXPECT_EQ(LocalAddressOf(RedisConnection::TextOf(info->get())), TlsAddress());

  // Replies of every size come back whole (a TLS record holds at most 16 KiB).
  const std::string key = testing::UniquePrefix() + "big";
  const std::string value(200'000, 'v');
  ASSERT_TRUE(redis.Command({"SET", key, value}).ok());
  absl::StatusOr<RedisConnection::Reply> read = redis.Command({"GET", key});
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(RedisConnection::TextOf(read->get()), value);
  ASSERT_TRUE(redis.Command({"DEL", key}).ok());
}

TEST(RedisTlsTest, RepliesLargerThanTheBridgesQueueComeBackWholeAndInOrder) {
  // 32 replies of 1 MiB in one pipeline: more than the 4 MiB a side of the bridge may queue
  // before it stops reading the other, so reading pauses and resumes on the way.
  RedisConnection redis(testing::TestRedisTlsOptions());
  const std::string key = testing::UniquePrefix() + "mib";
  const std::string value(1 << 20, 'm');
  ASSERT_TRUE(redis.Command({"SET", key, value}).ok());
  std::vector<RedisConnection::Args> gets(32, RedisConnection::Args{"GET", key});
  for (size_t i = 0; i < gets.size(); i += 2) gets[i] = {"STRLEN", key};
  absl::StatusOr<std::vector<RedisConnection::Reply>> replies = redis.Pipeline(gets);
  ASSERT_TRUE(replies.ok()) << replies.status();
  ASSERT_EQ(replies->size(), gets.size());
  for (size_t i = 0; i < gets.size(); ++i) {
    if (i % 2 == 0) {
      EXPECT_EQ((*replies)[i]->integer, static_cast<long long>(value.size())) << i;
    } else {
      EXPECT_TRUE(RedisConnection::TextOf((*replies)[i].get()) == value) << i;
    }
  }
  ASSERT_TRUE(redis.Command({"DEL", key}).ok());
}

TEST(RedisTlsTest, TheAsynchronousClientReachesTheTlsPort) {
  RedisOptions options = testing::TestRedisTlsOptions();
  options.timeout = std::chrono::milliseconds(1000);
  testing::AsyncRedisOnLoop redis(options);
  std::optional<absl::StatusOr<std::string>> answer;
  redis.client().Command({"CLIENT", "INFO"}, [&](absl::StatusOr<const redisReply*> reply) {
    if (reply.ok()) {
      answer.emplace(std::string(TextOfReply(*reply)));
    } else {
      answer.emplace(reply.status());
    }
  });
  ASSERT_TRUE(redis.RunUntil([&] { return answer.has_value(); }));
  ASSERT_TRUE(answer->ok()) << answer->status();
  EXPECT_EQ(LocalAddressOf(**answer), TlsAddress());
}

// A call through `options`, expected to fail: its status.
absl::Status PingFails(const RedisOptions& options) {
  RedisConnection redis(options);
  const auto started = std::chrono::steady_clock::now();
  absl::StatusOr<RedisConnection::Reply> reply = redis.Command({"PING"});
  EXPECT_LT(std::chrono::steady_clock::now() - started, std::chrono::seconds(3)) << "not at once";
  EXPECT_FALSE(reply.ok());
  return reply.status();
}

TEST(RedisTlsTest, ACertificateOfAnotherCaIsRefusedWithTheReason) {
  absl::StatusOr<tls::testing::TestCertificates> other = tls::testing::TestCertificates::Create(
      ::testing::TempDir() + "/" + testing::UniquePrefix() + "other-ca", "another-ca");
  ASSERT_TRUE(other.ok()) << other.status();
  RedisOptions options = testing::TestRedisTlsOptions();
  options.tls_ca_file = other->ca_file;
  const absl::Status status = PingFails(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("certificate verify failed")) << status;

  // The asynchronous client says so too.
  testing::AsyncRedisOnLoop redis(options);
  std::optional<absl::Status> answer;
  redis.RunUntil([] { return false; }, std::chrono::milliseconds(300));  // its first attempt
  redis.client().Command(
      {"PING"}, [&](absl::StatusOr<const redisReply*> reply) { answer.emplace(reply.status()); });
  ASSERT_TRUE(redis.RunUntil([&] { return answer.has_value(); }));
  EXPECT_FALSE(answer->ok());
  EXPECT_THAT(answer->message(), HasSubstr("certificate verify failed")) << *answer;
}

TEST(RedisTlsTest, ACertificateForAnotherNameIsRefused) {
  RedisOptions options = testing::TestRedisTlsOptions();
  options.tls_server_name = "redis.example";  // the test certificate names localhost, 127.0.0.1
  const absl::Status status = PingFails(options);
  EXPECT_THAT(status.message(), HasSubstr("certificate verify failed")) << status;
}

// A connection the bridge gave up on ends with a FIN, never a reset: the client may still write
// (hiredis writes its AUTH whenever it likes) and then reads the end. A reset would kill a client
// that does not ignore SIGPIPE, or show Debian's hiredis 0.14 only a poll error it ignores.
TEST(RedisTlsTest, AClientOfAFailedConnectionMayStillWriteAndThenReadsItsEnd) {
  RedisOptions options = testing::TestRedisTlsOptions();
  options.tls_server_name = "goodbye.example";  // refused, and a bridge of its own
  absl::StatusOr<std::shared_ptr<RedisTlsBridge>> bridge = RedisTlsBridgeFor(options);
  ASSERT_TRUE(bridge.ok()) << bridge.status();
  const int client = socket(AF_UNIX, SOCK_STREAM, 0);
  ASSERT_GE(client, 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, (*bridge)->socket_path().c_str(), sizeof(address.sun_path) - 1);
  ASSERT_EQ(connect(client, reinterpret_cast<sockaddr*>(&address), sizeof(address)), 0);
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while ((*bridge)->last_error().empty() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_THAT((*bridge)->last_error(), HasSubstr("certificate verify failed"));

  const std::string ping = "PING\r\n";
  EXPECT_EQ(send(client, ping.data(), ping.size(), MSG_NOSIGNAL), static_cast<ssize_t>(ping.size()))
      << std::strerror(errno);
  char byte = 0;
  EXPECT_EQ(recv(client, &byte, 1, 0), 0) << std::strerror(errno);
  close(client);
}

TEST(RedisTlsTest, APlainPortIsRefusedAtOnce) {
  RedisOptions options = testing::TestRedisTlsOptions();
  const RedisOptions plain = testing::TestRedisOptions();
  options.port = plain.port;
  const absl::Status status = PingFails(options);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable) << status;
  EXPECT_THAT(status.message(), HasSubstr("redis TLS")) << status;
}

TEST(RedisTlsTest, AMissingCaFileFailsEveryCallWithTheFile) {
  RedisOptions options = testing::TestRedisTlsOptions();
  options.tls_ca_file = "/nonexistent/redis-ca.pem";
  const absl::Status status = PingFails(options);
  EXPECT_THAT(status.message(), HasSubstr("/nonexistent/redis-ca.pem")) << status;
}

TEST(RedisTlsTest, NoPlaceForTheBridgesSocketFailsEveryCallWithTheReason) {
  const char* tmpdir = std::getenv("TMPDIR");
  const std::string saved = tmpdir != nullptr ? tmpdir : "";
  setenv("TMPDIR", "/nonexistent-tmp", 1);
  RedisOptions options = testing::TestRedisTlsOptions();
  options.tls_server_name = "no-place-for-the-socket";  // a bridge of its own, not a shared one
  const absl::Status status = PingFails(options);
  if (tmpdir != nullptr) {
    setenv("TMPDIR", saved.c_str(), 1);
  } else {
    unsetenv("TMPDIR");
  }
  EXPECT_THAT(status.message(), HasSubstr("cannot make a directory for the bridge's socket"))
      << status;
}

}  // namespace
}  // namespace im::store
