// LogicOptions from configuration: credentials published with the code are refused outside a
// local run, secrets never show in the effective configuration, and the config files we ship
// hold no key im-logic does not read.
#include "logic/logic_options.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <string>

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
