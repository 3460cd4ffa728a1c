#include "common/config.h"

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace im::common {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using ::testing::Not;

// The environment is injected, so tests never touch the process's own.
Config::Environment FakeEnv(std::map<std::string, std::string> vars) { return vars; }

Config Parse(std::string_view yaml, std::map<std::string, std::string> env = {}) {
  absl::StatusOr<Config> config = Config::FromYamlString(yaml, FakeEnv(std::move(env)));
  EXPECT_TRUE(config.ok()) << config.status();
  return config.ok() ? *std::move(config) : *Config::FromYamlString("", FakeEnv({}));
}

// A file under the test's temporary directory, removed at the end of the scope.
class TempFile {
 public:
  explicit TempFile(std::string_view contents) {
    path_ = ::testing::TempDir() + "config_test_XXXXXX";
    const int fd = mkstemp(path_.data());
    EXPECT_GE(fd, 0);
    if (fd >= 0) close(fd);
    std::ofstream(path_, std::ios::binary) << contents;
  }
  ~TempFile() { std::remove(path_.c_str()); }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(ConfigTest, EnvName) {
  EXPECT_EQ(Config::EnvName("gateway.max_frame_bytes"), "IM_GATEWAY_MAX_FRAME_BYTES");
  EXPECT_EQ(Config::EnvName("port"), "IM_PORT");
  EXPECT_EQ(Config::EnvName("redis.pool-size"), "IM_REDIS_POOL_SIZE");
}

TEST(ConfigTest, ReadsYamlValues) {
  Config config = Parse(R"(
name: gw-1
port: 7000
verbose: true
ratio: 0.25
)");
  EXPECT_EQ(config.GetString("name", "x"), "gw-1");
  EXPECT_EQ(config.GetInt("port", 1, 1, 65535), 7000);
  EXPECT_TRUE(config.GetBool("verbose", false));
  EXPECT_DOUBLE_EQ(config.GetDouble("ratio", 1.0, 0.0, 1.0), 0.25);
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, ReadsNestedKeys) {
  Config config = Parse(R"(
gateway:
  max_frame_bytes: 65536
  tls:
    enabled: on
logic:
  address: "10.0.0.1:9000"
)");
  EXPECT_EQ(config.GetInt("gateway.max_frame_bytes", 1, 1, INT64_MAX), 65536);
  EXPECT_TRUE(config.GetBool("gateway.tls.enabled", false));
  EXPECT_EQ(config.GetString("logic.address", ""), "10.0.0.1:9000");
  EXPECT_EQ(config.GetString("gateway.tls.cert", "none"), "none");
  EXPECT_EQ(config.GetString("gateway.missing.deeper", "none"), "none");
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, LookupsDoNotChangeTheTree) {
  // yaml-cpp's non-const operator[] inserts keys and its operator= rewrites nodes in place.
  Config config = Parse("a:\n  b: 1\n  c: 2\n");
  EXPECT_EQ(config.GetInt("a.x.y", 5, 0, 10), 5);
  EXPECT_EQ(config.GetInt("a.b", 5, 0, 10), 1);
  EXPECT_EQ(config.GetInt("a.c", 5, 0, 10), 2);
  EXPECT_EQ(config.GetInt("a.b", 5, 0, 10), 1);
  EXPECT_EQ(config.GetString("a.x", "absent"), "absent");
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, EnvironmentOverridesYaml) {
  Config config = Parse(
      "gateway:\n  max_frame_bytes: 65536\nname: yaml\n",
      {{"IM_GATEWAY_MAX_FRAME_BYTES", "1024"}, {"IM_NAME", "env"}, {"IM_ONLY_IN_ENV", "yes"}});
  EXPECT_EQ(config.GetInt("gateway.max_frame_bytes", 1, 1, INT64_MAX), 1024);
  EXPECT_EQ(config.GetString("name", ""), "env");
  EXPECT_TRUE(config.GetBool("only_in_env", false));
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, EnvironmentOverridesAMisplacedYamlValue) {
  Config config = Parse("port: [1, 2]\n", {{"IM_PORT", "80"}});
  EXPECT_EQ(config.GetInt("port", 1, 1, 65535), 80);
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, DefaultsWhenAbsent) {
  Config config = Parse("");
  EXPECT_EQ(config.GetString("name", "default"), "default");
  EXPECT_EQ(config.GetInt("port", 7000, 1, 65535), 7000);
  EXPECT_FALSE(config.GetBool("verbose", false));
  EXPECT_TRUE(config.GetBool("verbose", true));
  EXPECT_DOUBLE_EQ(config.GetDouble("ratio", 0.5, 0, 1), 0.5);
  EXPECT_THAT(config.GetStringList("peers", {"a", "b"}), ElementsAre("a", "b"));
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, YamlNullMeansDefault) {
  Config config = Parse("name:\nport: ~\n");
  EXPECT_EQ(config.GetString("name", "default"), "default");
  EXPECT_EQ(config.GetInt("port", 7000, 1, 65535), 7000);
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, BadIntGivesDefaultAndError) {
  Config config = Parse("port: 70x0\n");
  EXPECT_EQ(config.GetInt("port", 7000, 1, 65535), 7000);
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr("port"));
  EXPECT_THAT(config.status().message(), HasSubstr("70x0"));
  EXPECT_THAT(config.status().message(), HasSubstr("an integer in [1, 65535]"));
}

TEST(ConfigTest, IntMustBeTheWholeString) {
  for (const char* text : {"12abc", "1.5", "0x10", "", "99999999999999999999", "1 2"}) {
    Config config = Parse("", {{"IM_N", text}});
    EXPECT_EQ(config.GetInt("n", 3, INT64_MIN, INT64_MAX), 3) << text;
    EXPECT_FALSE(config.status().ok()) << text;
  }
  Config config = Parse("", {{"IM_N", "-42"}});
  EXPECT_EQ(config.GetInt("n", 3, -100, 100), -42);
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, IntOutOfRange) {
  Config config = Parse("low: 0\nhigh: 65536\nedge: 65535\n");
  EXPECT_EQ(config.GetInt("low", 7, 1, 65535), 7);
  EXPECT_EQ(config.GetInt("high", 7, 1, 65535), 7);
  EXPECT_EQ(config.GetInt("edge", 7, 1, 65535), 65535);
  EXPECT_THAT(config.status().message(), HasSubstr("low"));
  EXPECT_THAT(config.status().message(), HasSubstr("high"));
  EXPECT_THAT(config.status().message(), ::testing::Not(HasSubstr("edge")));
}

TEST(ConfigTest, Bools) {
  Config config = Parse(R"(
a: TRUE
b: Off
c: yes
d: 0
e: "On"
f: maybe
)");
  EXPECT_TRUE(config.GetBool("a", false));
  EXPECT_FALSE(config.GetBool("b", true));
  EXPECT_TRUE(config.GetBool("c", false));
  EXPECT_FALSE(config.GetBool("d", true));
  EXPECT_TRUE(config.GetBool("e", false));
  EXPECT_TRUE(config.status().ok()) << config.status();
  EXPECT_TRUE(config.GetBool("f", true));
  EXPECT_THAT(config.status().message(), HasSubstr("maybe"));
  EXPECT_THAT(config.status().message(), HasSubstr("boolean"));
}

TEST(ConfigTest, Doubles) {
  Config config = Parse("a: 1e-3\nb: nan\nc: 2.5\nd: abc\n");
  EXPECT_DOUBLE_EQ(config.GetDouble("a", 9, 0, 1), 0.001);
  EXPECT_DOUBLE_EQ(config.GetDouble("b", 9, 0, 1), 9);  // NaN is in no range
  EXPECT_DOUBLE_EQ(config.GetDouble("c", 9, 0, 1), 9);
  EXPECT_DOUBLE_EQ(config.GetDouble("d", 9, 0, 1), 9);
  const std::string message(config.status().message());
  EXPECT_THAT(message, HasSubstr("b: "));
  EXPECT_THAT(message, HasSubstr("c: "));
  EXPECT_THAT(message, HasSubstr("d: "));
  EXPECT_THAT(message, ::testing::Not(HasSubstr("a: ")));
}

TEST(ConfigTest, StringListFromYamlSequence) {
  Config config = Parse("peers:\n  - \" a:1 \"\n  - b:2\n  - \"\"\n");
  EXPECT_THAT(config.GetStringList("peers", {}), ElementsAre("a:1", "b:2"));
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, StringListFromCommaString) {
  Config config = Parse("peers: \" a:1, b:2 ,,c:3,\"\none: x\n");
  EXPECT_THAT(config.GetStringList("peers", {}), ElementsAre("a:1", "b:2", "c:3"));
  EXPECT_THAT(config.GetStringList("one", {}), ElementsAre("x"));
  EXPECT_TRUE(config.status().ok()) << config.status();
}

TEST(ConfigTest, StringListFromEnvironmentOverridesSequence) {
  Config config = Parse("peers: [a, b]\n", {{"IM_PEERS", "x, y"}});
  EXPECT_THAT(config.GetStringList("peers", {}), ElementsAre("x", "y"));
  Config emptied = Parse("peers: [a, b]\n", {{"IM_PEERS", ""}});
  EXPECT_THAT(emptied.GetStringList("peers", {"d"}), IsEmpty());
}

TEST(ConfigTest, StringListRejectsMapsAndNestedElements) {
  Config config = Parse("m: {a: 1}\ns: [a, [b]]\n");
  EXPECT_THAT(config.GetStringList("m", {"d"}), ElementsAre("d"));
  EXPECT_THAT(config.GetStringList("s", {"d"}), ElementsAre("d"));
  EXPECT_THAT(config.status().message(), HasSubstr("m: got a map"));
  EXPECT_THAT(config.status().message(), HasSubstr("s: got an element that is a sequence"));
}

TEST(ConfigTest, MapOrSequenceWhereScalarExpectedIsAnError) {
  Config config = Parse("gateway:\n  port: 1\nlist: [1, 2]\n");
  EXPECT_EQ(config.GetString("gateway", "d"), "d");
  EXPECT_EQ(config.GetInt("list", 5, 0, 10), 5);
  EXPECT_THAT(config.status().message(), HasSubstr("gateway: got a map, expected a scalar"));
  EXPECT_THAT(config.status().message(), HasSubstr("list: got a sequence, expected a scalar"));
}

TEST(ConfigTest, ScalarWhereMapExpectedIsAnError) {
  Config config = Parse("gateway: 5\n");
  EXPECT_EQ(config.GetInt("gateway.port", 7, 0, 65535), 7);
  EXPECT_THAT(config.status().message(),
              HasSubstr("gateway.port: got a scalar at gateway, expected a map at gateway"));
}

TEST(ConfigTest, StatusListsEveryError) {
  Config config = Parse("a: x\nb: 1000\nc: perhaps\n", {{"IM_D", "1.2.3"}});
  config.GetInt("a", 0, 0, 10);
  config.GetInt("b", 0, 0, 10);
  config.GetBool("c", false);
  config.GetDouble("d", 0, 0, 10);
  config.GetInt("fine", 0, 0, 10);
  const absl::Status status = config.status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("a: got \"x\""));
  EXPECT_THAT(status.message(), HasSubstr("b: got \"1000\""));
  EXPECT_THAT(status.message(), HasSubstr("c: got \"perhaps\""));
  // Errors from the environment name the variable, since that is where the fix goes.
  EXPECT_THAT(status.message(), HasSubstr("d (from IM_D): got \"1.2.3\""));
  EXPECT_THAT(status.message(), ::testing::Not(HasSubstr("fine")));
}

TEST(ConfigTest, LoadFileReadsYaml) {
  TempFile file("gateway:\n  port: 7001\n");
  absl::StatusOr<Config> config = Config::LoadFile(file.path(), FakeEnv({}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetInt("gateway.port", 1, 1, 65535), 7001);
}

TEST(ConfigTest, LoadFileEmptyPathIsAnEmptyConfig) {
  absl::StatusOr<Config> config = Config::LoadFile("", FakeEnv({{"IM_PORT", "9"}}));
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->GetString("name", "d"), "d");
  EXPECT_EQ(config->GetInt("port", 1, 1, 65535), 9);
  EXPECT_TRUE(config->status().ok());
}

TEST(ConfigTest, LoadFileMissing) {
  const std::string path = ::testing::TempDir() + "no_such_dir/config.yaml";
  absl::StatusOr<Config> config = Config::LoadFile(path, FakeEnv({}));
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(path));
}

TEST(ConfigTest, LoadFileDirectory) {
  absl::StatusOr<Config> config = Config::LoadFile(::testing::TempDir(), FakeEnv({}));
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, LoadFileMalformed) {
  TempFile file("gateway:\n  port: [1, 2\n");
  absl::StatusOr<Config> config = Config::LoadFile(file.path(), FakeEnv({}));
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(config.status().message(), HasSubstr(file.path()));
  EXPECT_THAT(config.status().message(), HasSubstr("line"));  // yaml-cpp's position
}

TEST(ConfigTest, MalformedYamlString) {
  absl::StatusOr<Config> config = Config::FromYamlString("a: [1\nb: }", FakeEnv({}));
  EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(ConfigTest, TopLevelMustBeAMap) {
  EXPECT_FALSE(Config::FromYamlString("just a string", FakeEnv({})).ok());
  EXPECT_FALSE(Config::FromYamlString("- a\n- b\n", FakeEnv({})).ok());
  EXPECT_TRUE(Config::FromYamlString("# only a comment\n", FakeEnv({})).ok());
}

TEST(ConfigTest, ProcessEnvReadsTheEnvironment) {
  // Read-only: PATH is set wherever tests run, and a name this odd is not.
  const char* path = std::getenv("PATH");
  ASSERT_NE(path, nullptr);
  Config::Environment env = Config::ProcessEnv();
  EXPECT_EQ(env["PATH"], path);
  EXPECT_EQ(env.count("IM_CONFIG_TEST_SURELY_UNSET_4F2A"), 0u);
}

TEST(ConfigTest, KeysOfTheFileThatNoGetterAskedForAreUnknown) {
  Config config = Parse(
      "gateway:\n  listen: 0.0.0.0:7000\n  listn: 0.0.0.0:7001\n  max_frame_byte: 9\n"
      "  max_frame_bytes: 4096\nlogg:\n  level: info\nlog:\n  level: info\n");
  config.GetString("gateway.listen", "");
  config.GetInt("gateway.max_frame_bytes", 1, 0, 1 << 20);
  config.GetString("log.level", "");
  const absl::Status status = config.CheckUnknownKeys();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(),
              HasSubstr("key gateway.listn in the file is no setting (nearest: gateway.listen)"));
  EXPECT_THAT(status.message(), HasSubstr("key gateway.max_frame_byte in the file is no setting "
                                          "(nearest: gateway.max_frame_bytes)"));
  EXPECT_THAT(status.message(), HasSubstr("key logg.level in the file is no setting "
                                          "(nearest: log.level)"));
}

TEST(ConfigTest, EveryKeyAskedForIsKnownAndEmptySectionsAreFine) {
  Config config = Parse("gateway:\n  listen: a\n  tags: [x, y]\nlogic:\n");
  config.GetString("gateway.listen", "");
  config.GetStringList("gateway.tags", {});
  config.GetBool("logic.send_loop", true);
  EXPECT_TRUE(config.CheckUnknownKeys().ok()) << config.CheckUnknownKeys();
}

TEST(ConfigTest, VariablesOfThisBinarysSectionsThatMatchNoKeyAreUnknown) {
  Config config = Parse("", {{"IM_GATEWAY_LISTN", "x"},
                             {"IM_GATEWAY_LISTEN", "y"},
                             {"IM_LOG_LEVL", "debug"},
                             // Tools' variables and other binaries' sections are not ours.
                             {"IM_TEST_REDIS", "127.0.0.1:1"},
                             {"IM_VAR_DIR", "/tmp"},
                             {"IM_LOCAL_REDIS_PORT", "1"},
                             {"IM_LOGIC_WRITERS", "3"},
                             {"GATEWAY_LISTN", "x"}});
  config.GetString("gateway.listen", "");
  config.GetString("log.level", "");
  const absl::Status status = config.CheckUnknownKeys();
  EXPECT_THAT(status.message(), HasSubstr("variable IM_GATEWAY_LISTN overrides no setting "
                                          "(nearest: IM_GATEWAY_LISTEN)"));
  EXPECT_THAT(status.message(),
              HasSubstr("variable IM_LOG_LEVL overrides no setting (nearest: IM_LOG_LEVEL)"));
  for (const char* foreign : {"IM_TEST_REDIS", "IM_VAR_DIR", "IM_LOCAL_REDIS_PORT",
                              "IM_LOGIC_WRITERS", "variable GATEWAY_LISTN"}) {
    EXPECT_THAT(status.message(), Not(HasSubstr(foreign)));
  }
}

// Found by config_fuzz: a value that is not UTF-8 made the dump throw, at every start.
TEST(ConfigTest, EffectiveJsonShowsAValueThatIsNotUtf8WithReplacementCharacters) {
  Config config = Parse("gateway:\n  id: \"gw-\xd9\"\n", {{"IM_LOGIC_ID", "logic-\xff"}});
  config.GetString("gateway.id", "gw-1");
  config.GetString("logic.id", "logic-1");
  const nlohmann::json dumped = nlohmann::json::parse(config.EffectiveJson());
  EXPECT_EQ(dumped["gateway.id"]["value"], "gw-\xef\xbf\xbd");
  EXPECT_EQ(dumped["logic.id"]["value"], "logic-\xef\xbf\xbd");
}

TEST(ConfigTest, EffectiveJsonShowsEveryKeyItsSourceAndHidesSecrets) {
  Config config = Parse("logic:\n  writers: 3\n  token_secret: hunter2-hunter2-hunter2\n",
                        {{"IM_MYSQL_PASSWORD", ""}, {"IM_LOGIC_ID", "logic-7"}});
  config.GetInt("logic.writers", 1, 1, 64);
  config.GetSecret("logic.token_secret", "default-secret");
  config.GetSecret("mysql.password", "im-dev");
  config.GetString("logic.id", "logic-1");
  config.GetBool("logic.send_loop", true);
  config.GetStringList("kafka.brokers", {"a:1", "b:2"});
  EXPECT_EQ(config.EffectiveJson(), R"json({
  "kafka.brokers": {
    "value": "a:1,b:2",
    "source": "default"
  },
  "logic.id": {
    "value": "logic-7",
    "source": "IM_LOGIC_ID"
  },
  "logic.send_loop": {
    "value": "true",
    "source": "default"
  },
  "logic.token_secret": {
    "value": "(set)",
    "source": "file"
  },
  "logic.writers": {
    "value": "3",
    "source": "file"
  },
  "mysql.password": {
    "value": "(empty)",
    "source": "IM_MYSQL_PASSWORD"
  }
}
)json");
}

}  // namespace
}  // namespace im::common
