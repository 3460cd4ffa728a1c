// LogicOptions from configuration: credentials published with the code are refused outside a
// local run, secrets never show in the effective configuration, and the config files we ship
// hold no key im-logic does not read.
#include "logic/logic_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "common/config.h"

namespace im::logic {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

common::Config ConfigWith(std::map<std::string, std::string> env) {
  absl::StatusOr<common::Config> config = common::Config::FromYamlString("", std::move(env));
  EXPECT_TRUE(config.ok()) << config.status();
  return *std::move(config);
}

TEST(LogicOptionsTest, PublishedCredentialsAreRefusedOutsideDevMode) {
  common::Config config = ConfigWith({});
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(config);
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(options.status().message(),
              HasSubstr("logic.token_secret and mysql.password left at the value published"));
  EXPECT_THAT(options.status().message(), HasSubstr("IM_DEV_MODE=true"));

  common::Config one_left = ConfigWith({{"IM_MYSQL_PASSWORD", "s3cret-of-our-own"}});
  options = LogicOptions::FromConfig(one_left);
  EXPECT_THAT(options.status().message(), HasSubstr("logic.token_secret left at the value"));
  EXPECT_THAT(options.status().message(), Not(HasSubstr("mysql.password")));

  common::Config local_redis = ConfigWith({{"IM_LOGIC_TOKEN_SECRET", "a-token-secret-of-our-own"},
                                           {"IM_MYSQL_PASSWORD", "s3cret-of-our-own"},
                                           {"IM_REDIS_USERNAME", "im"},
                                           {"IM_REDIS_PASSWORD", kLocalRedisPassword}});
  options = LogicOptions::FromConfig(local_redis);
  EXPECT_THAT(options.status().message(), HasSubstr("redis.password left at the value published"));

  common::Config local_kafka = ConfigWith({{"IM_LOGIC_TOKEN_SECRET", "a-token-secret-of-our-own"},
                                           {"IM_MYSQL_PASSWORD", "s3cret-of-our-own"},
                                           {"IM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"},
                                           {"IM_KAFKA_USERNAME", "im"},
                                           {"IM_KAFKA_PASSWORD", kLocalKafkaPassword}});
  options = LogicOptions::FromConfig(local_kafka);
  EXPECT_THAT(options.status().message(), HasSubstr("kafka.password left at the value published"));
}

common::Config DevConfigWith(std::map<std::string, std::string> env) {
  env["IM_DEV_MODE"] = "true";
  return ConfigWith(std::move(env));
}

TEST(LogicOptionsTest, TheAdminApiIsOffByDefaultAndNeedsAKeyOfItsOwn) {
  const std::map<std::string, std::string> base = {
      {"IM_LOGIC_TOKEN_SECRET", "a-token-secret-of-our-own"},
      {"IM_MYSQL_PASSWORD", "s3cret-of-our-own"}};
  common::Config off = ConfigWith(base);
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(off);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->admin_api.listen.empty());

  auto with = [&](std::map<std::string, std::string> more) {
    more.insert(base.begin(), base.end());
    common::Config config = ConfigWith(std::move(more));
    return LogicOptions::FromConfig(config);
  };
  EXPECT_THAT(with({{"IM_ADMIN_API_LISTEN", "127.0.0.1:9300"}}).status().message(),
              HasSubstr("admin_api.key must be set too"));
  EXPECT_THAT(with({{"IM_ADMIN_API_LISTEN", "127.0.0.1:9300"}, {"IM_ADMIN_API_KEY", "short"}})
                  .status()
                  .message(),
              HasSubstr("at least 16 bytes"));
  EXPECT_THAT(
      with({{"IM_ADMIN_API_LISTEN", "127.0.0.1:9300"}, {"IM_ADMIN_API_KEY", kLocalAdminApiKey}})
          .status()
          .message(),
      HasSubstr("admin_api.key left at the value published"));
  absl::StatusOr<LogicOptions> on = with(
      {{"IM_ADMIN_API_LISTEN", "127.0.0.1:9300"}, {"IM_ADMIN_API_KEY", "an-admin-key-of-our-own"}});
  ASSERT_TRUE(on.ok()) << on.status();
  EXPECT_EQ(on->admin_api.key, "an-admin-key-of-our-own");
}

TEST(LogicOptionsTest, KafkaLoginAndTlsAreReadFromTheKafkaKeys) {
  common::Config config = DevConfigWith({{"IM_KAFKA_BROKERS", "k1:9093,k2:9093"},
                                         {"IM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"},
                                         {"IM_KAFKA_SASL_MECHANISM", "SCRAM-SHA-256"},
                                         {"IM_KAFKA_USERNAME", "im"},
                                         {"IM_KAFKA_PASSWORD", "kafka-s3cret"},
                                         {"IM_KAFKA_TLS_CA_FILE", "/etc/im/kafka/ca.pem"}});
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->kafka.security_protocol, "sasl_ssl");
  EXPECT_EQ(options->kafka.sasl_mechanism, "SCRAM-SHA-256");
  EXPECT_EQ(options->kafka.username, "im");
  EXPECT_EQ(options->kafka.password, "kafka-s3cret");
  EXPECT_THAT(config.EffectiveJson(), Not(HasSubstr("kafka-s3cret")));

  const KafkaProperties properties = KafkaConnectionProperties(options->kafka);
  const std::map<std::string, std::string> by_name(properties.begin(), properties.end());
  EXPECT_EQ(by_name.at("bootstrap.servers"), "k1:9093,k2:9093");
  EXPECT_EQ(by_name.at("security.protocol"), "sasl_ssl");
  EXPECT_EQ(by_name.at("sasl.mechanisms"), "SCRAM-SHA-256");
  EXPECT_EQ(by_name.at("sasl.username"), "im");
  EXPECT_EQ(by_name.at("sasl.password"), "kafka-s3cret");
  EXPECT_EQ(by_name.at("ssl.ca.location"), "/etc/im/kafka/ca.pem");
  EXPECT_EQ(by_name.at("ssl.endpoint.identification.algorithm"), "https");
  EXPECT_EQ(by_name.count("ssl.certificate.location"), 0u);
}

TEST(LogicOptionsTest, PlaintextKafkaSetsNoSecurityProperty) {
  common::Config config = DevConfigWith({{"IM_KAFKA_BROKERS", "127.0.0.1:9092"}});
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(config);
  ASSERT_TRUE(options.ok()) << options.status();
  const KafkaProperties properties = KafkaConnectionProperties(options->kafka);
  const std::map<std::string, std::string> by_name(properties.begin(), properties.end());
  EXPECT_EQ(by_name.at("security.protocol"), "plaintext");
  EXPECT_EQ(by_name.count("sasl.username"), 0u);
  EXPECT_EQ(by_name.count("ssl.ca.location"), 0u);
}

TEST(LogicOptionsTest, KafkaSecurityMistakesAreRefusedWithTheKeyAtFault) {
  const std::vector<std::pair<std::map<std::string, std::string>, std::string>> cases = {
      {{{"IM_KAFKA_SECURITY_PROTOCOL", "tls"}}, "kafka.security_protocol must be"},
      {{{"IM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"}, {"IM_KAFKA_USERNAME", "im"}},
       "set kafka.username and kafka.password"},
      {{{"IM_KAFKA_SECURITY_PROTOCOL", "sasl_ssl"},
        {"IM_KAFKA_SASL_MECHANISM", "GSSAPI"},
        {"IM_KAFKA_USERNAME", "im"},
        {"IM_KAFKA_PASSWORD", "x"}},
       "kafka.sasl_mechanism must be"},
      {{{"IM_KAFKA_USERNAME", "im"}, {"IM_KAFKA_PASSWORD", "x"}}, "which sends no login"},
      {{{"IM_KAFKA_SECURITY_PROTOCOL", "sasl_plaintext"},
        {"IM_KAFKA_USERNAME", "im"},
        {"IM_KAFKA_PASSWORD", "x"},
        {"IM_KAFKA_TLS_CA_FILE", "ca.pem"}},
       "set ssl or sasl_ssl"},
      {{{"IM_KAFKA_SECURITY_PROTOCOL", "ssl"}, {"IM_KAFKA_TLS_CERT_FILE", "client.pem"}},
       "kafka.tls_cert_file and kafka.tls_key_file go together"},
  };
  for (const auto& [env, expected] : cases) {
    common::Config config = DevConfigWith(env);
    absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(config);
    EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument) << expected;
    EXPECT_THAT(options.status().message(), HasSubstr(expected));
  }
}

TEST(LogicOptionsTest, RedisTlsIsOnWithACaFileOrTheTlsKey) {
  common::Config defaults = DevConfigWith({});
  absl::StatusOr<LogicOptions> plain = LogicOptions::FromConfig(defaults);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->redis.tls);

  common::Config with_ca = DevConfigWith({{"IM_REDIS_ADDRESS", "redis.internal:6380"},
                                          {"IM_REDIS_TLS_CA_FILE", "/etc/im/redis/ca.pem"},
                                          {"IM_REDIS_TLS_SERVER_NAME", "redis.example"}});
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(with_ca);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->redis.tls);
  EXPECT_EQ(options->redis.host, "redis.internal");
  EXPECT_EQ(options->redis.port, 6380);
  EXPECT_EQ(options->redis.tls_ca_file, "/etc/im/redis/ca.pem");
  EXPECT_EQ(options->redis.tls_server_name, "redis.example");

  common::Config system_roots = DevConfigWith({{"IM_REDIS_TLS", "true"}});
  options = LogicOptions::FromConfig(system_roots);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->redis.tls);
  EXPECT_EQ(options->redis.tls_ca_file, "");

  common::Config contradiction =
      DevConfigWith({{"IM_REDIS_TLS", "false"}, {"IM_REDIS_TLS_CA_FILE", "ca.pem"}});
  options = LogicOptions::FromConfig(contradiction);
  EXPECT_EQ(options.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(options.status().message(), HasSubstr("need redis.tls"));
}

TEST(LogicOptionsTest, OwnCredentialsOrDevModeStart) {
  common::Config own = ConfigWith({{"IM_LOGIC_TOKEN_SECRET", "a-token-secret-of-our-own"},
                                   {"IM_MYSQL_PASSWORD", "s3cret-of-our-own"}});
  EXPECT_TRUE(LogicOptions::FromConfig(own).ok());
  common::Config dev = ConfigWith({{"IM_DEV_MODE", "true"}});
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(dev);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_TRUE(options->dev_mode);
  EXPECT_EQ(options->token_secret, kDefaultTokenSecret);
}

TEST(LogicOptionsTest, SecretsNeverShowInTheEffectiveConfiguration) {
  common::Config config = ConfigWith({{"IM_LOGIC_TOKEN_SECRET", "a-token-secret-of-our-own"},
                                      {"IM_MYSQL_PASSWORD", "s3cret-of-our-own"},
                                      {"IM_REDIS_USERNAME", "im"},
                                      {"IM_REDIS_PASSWORD", "redis-s3cret"}});
  absl::StatusOr<LogicOptions> options = LogicOptions::FromConfig(config);
  ASSERT_TRUE(options.ok()) << options.status();
  EXPECT_EQ(options->redis.username, "im");
  EXPECT_EQ(options->redis.password, "redis-s3cret");
  const std::string json = config.EffectiveJson();
  EXPECT_THAT(json, Not(HasSubstr("a-token-secret-of-our-own")));
  EXPECT_THAT(json, Not(HasSubstr("s3cret-of-our-own")));
  EXPECT_THAT(json, Not(HasSubstr("redis-s3cret")));
  EXPECT_THAT(json, HasSubstr(R"json("logic.token_secret": {
    "value": "(set)",
    "source": "IM_LOGIC_TOKEN_SECRET")json"));
}

// A key in a shipped file that im-logic does not read would stop every logic pod at start.
TEST(LogicOptionsTest, ShippedConfigFilesHoldOnlyKeysLogicReads) {
  for (const char* file : {"deploy/local/logic.yaml", "deploy/k8s/base/config/logic.yaml"}) {
    absl::StatusOr<common::Config> config =
        common::Config::LoadFile(std::string(IM_SOURCE_DIR) + "/" + file, {});
    ASSERT_TRUE(config.ok()) << file << ": " << config.status();
    LogicOptions::FromConfig(*config).IgnoreError();  // k8s's file leaves secrets to the Secret
    EXPECT_TRUE(config->CheckUnknownKeys().ok()) << file << ": " << config->CheckUnknownKeys();
  }
}

}  // namespace
}  // namespace im::logic
