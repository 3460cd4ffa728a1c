#pragma once

#include <gtest/gtest.h>
#include <hiredis/hiredis.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "store/redis_connection.h"
#include "store/tests/unique_prefix.h"

namespace im::store::testing {

// Sets options->host and port from the "host:port" in environment variable `name`; false (and a
// test failure, never a skip) when it is unset.
inline bool AddressFromEnv(const char* name, RedisOptions* options) {
  const char* address = std::getenv(name);
  if (address == nullptr) {
    ADD_FAILURE() << name << " is not set: run through scripts/test.sh, or start Redis with "
                  << "deploy/local/services.sh start and set IM_TEST_REDIS=127.0.0.1:16379 "
                  << "(IM_TEST_REDIS_TLS=127.0.0.1:16380 for its TLS port)";
    return false;
  }
  const std::string text(address);
  const size_t colon = text.rfind(':');
  options->host = text.substr(0, colon);
  options->port = std::atoi(text.substr(colon + 1).c_str());
  return true;
}

// The real Redis that scripts/test.sh starts, named by IM_TEST_REDIS ("host:port"), with the
// credentials it requires (IM_TEST_REDIS_USERNAME, IM_TEST_REDIS_PASSWORD; unset: none).
inline RedisOptions TestRedisOptions() {
  RedisOptions options;
  if (!AddressFromEnv("IM_TEST_REDIS", &options)) return options;
  if (const char* username = std::getenv("IM_TEST_REDIS_USERNAME")) options.username = username;
  if (const char* password = std::getenv("IM_TEST_REDIS_PASSWORD")) options.password = password;
  return options;
}

// The same Redis on its TLS port (IM_TEST_REDIS_TLS), its certificate signed by the CA in
// IM_TEST_REDIS_TLS_CA (services.sh serves TLS on IM_LOCAL_REDIS_PORT + 1).
inline RedisOptions TestRedisTlsOptions() {
  RedisOptions options = TestRedisOptions();
  if (!AddressFromEnv("IM_TEST_REDIS_TLS", &options)) return options;
  const char* ca = std::getenv("IM_TEST_REDIS_TLS_CA");
  EXPECT_NE(ca, nullptr) << "IM_TEST_REDIS_TLS_CA is not set (scripts/test.sh sets it)";
  options.tls = true;
  options.tls_ca_file = ca != nullptr ? ca : "";
  return options;
}

// A client of the test Redis, as the Redis backends share one.
inline std::shared_ptr<RedisConnection> TestRedis(size_t connections = 4) {
  RedisOptions options = TestRedisOptions();
  options.connections = connections;
  return std::make_shared<RedisConnection>(options);
}

// Direct access to the test Redis, to inspect or damage what a backend stored.
class RedisAdmin {
 public:
  RedisAdmin() : redis_(OneConnection()) {}
  // Runs a command whose reply is an integer; -1 on anything else.
  int64_t Integer(const RedisConnection::Args& args) {
    absl::StatusOr<RedisConnection::Reply> reply = redis_.Command(args);
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok() || (*reply)->type != REDIS_REPLY_INTEGER) return -1;
    return (*reply)->integer;
  }

  // Runs a command for its effect (CLIENT PAUSE, SCRIPT FLUSH, ...).
  absl::Status Run(const RedisConnection::Args& args) { return redis_.Command(args).status(); }

  // The server's own counters, to count what a backend cost. INFO's own read is counted too.
  int64_t ReadsProcessed() { return InfoField("stats", "total_reads_processed:"); }
  int64_t CommandCalls(const std::string& command) {
    return InfoField("commandstats", "cmdstat_" + command + ":calls=");
  }

 private:
  // One connection: the reads the server counts are then the measured ones and the INFO, never a
  // login (AUTH) of a connection opened meanwhile.
  static RedisOptions OneConnection() {
    RedisOptions options = TestRedisOptions();
    options.connections = 1;
    return options;
  }
  // The number after `prefix` in INFO `section`; 0 when the line is absent (a command never
  // called has no commandstats line).
  int64_t InfoField(const std::string& section, const std::string& prefix) {
    absl::StatusOr<RedisConnection::Reply> reply = redis_.Command({"INFO", section});
    EXPECT_TRUE(reply.ok()) << reply.status();
    if (!reply.ok()) return -1;
    const std::string text(RedisConnection::TextOf(reply->get()));
    const size_t at = text.find(prefix);
    if (at == std::string::npos) return 0;
    return std::atoll(text.c_str() + at + prefix.size());
  }

  RedisConnection redis_;
};

// An ACL user of the test Redis with a password, for as long as the object lives: what a
// cluster that runs Redis with credentials (redis.username, redis.password) logs in as.
class AclUser {
 public:
  AclUser() {
    EXPECT_TRUE(
        admin_.Run({"ACL", "SETUSER", name_, "reset", "on", ">" + password_, "~*", "&*", "+@all"})
            .ok());
  }
  ~AclUser() { EXPECT_TRUE(admin_.Run({"ACL", "DELUSER", name_}).ok()); }
  AclUser(const AclUser&) = delete;
  AclUser& operator=(const AclUser&) = delete;

  // The test Redis's address with this user's credentials.
  RedisOptions Options() const {
    RedisOptions options = TestRedisOptions();
    options.username = name_;
    options.password = password_;
    return options;
  }
  const std::string& name() const { return name_; }

 private:
  RedisAdmin admin_;
  const std::string name_ = UniquePrefix() + "im";
  const std::string password_ = UniquePrefix() + "secret";
};

}  // namespace im::store::testing
