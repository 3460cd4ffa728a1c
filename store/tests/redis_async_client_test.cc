// RedisAsyncClient against the test Redis (IM_TEST_REDIS), on a libuv loop run by the test:
// commands of one iteration in one write, replies in order, errors per command, a lost
// connection and a stalled server failing what is pending and then recovering, scripts reloaded
// after the server lost them.
#include "store/redis_async_client.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/tests/test_loop.h"
#include "store/tests/test_redis.h"

namespace im::store {
namespace {

using std::chrono::milliseconds;
using ::testing::HasSubstr;

class RedisAsyncClientTest : public ::testing::Test {
 protected:
  static RedisOptions Options() {
    RedisOptions options = testing::TestRedisOptions();
    options.timeout = milliseconds(300);
    return options;
  }

  bool RunUntil(const std::function<bool()>& done) { return redis_.RunUntil(done); }

  // Issues `args` and runs the loop until it is answered: the reply as text or integer, or the
  // status.
  struct Answer {
    absl::Status status;
    std::string text;
    long long integer = 0;
  };
  Answer Call(const RedisAsyncClient::Args& args) { return CallOn(redis_, args); }
  static Answer CallOn(testing::AsyncRedisOnLoop& redis, const RedisAsyncClient::Args& args) {
    std::optional<Answer> answer;
    redis.client().Command(
        args, [&](absl::StatusOr<const redisReply*> reply) { answer.emplace(AnswerOf(reply)); });
    EXPECT_TRUE(redis.RunUntil([&] { return answer.has_value(); })) << "never answered";
    if (!answer) {
      answer.emplace();
      answer->status = absl::DeadlineExceededError("never answered");
    }
    return *answer;
  }
  static Answer AnswerOf(const absl::StatusOr<const redisReply*>& reply) {
    Answer answer;
    if (!reply.ok()) {
      answer.status = reply.status();
    } else if ((*reply)->type == REDIS_REPLY_INTEGER) {
      answer.integer = (*reply)->integer;
    } else if ((*reply)->str != nullptr) {
      answer.text = std::string(TextOfReply(*reply));
    }
    return answer;
  }

  const std::string prefix_ = testing::UniquePrefix();
  testing::AsyncRedisOnLoop redis_{Options()};
  RedisAsyncClient* const client_ = &redis_.client();
  testing::RedisAdmin admin_;
};

TEST_F(RedisAsyncClientTest, TheConnectionLogsInAsItsAclUserAndAWrongPasswordFailsCommands) {
  testing::AclUser user;
  RedisOptions options = user.Options();
  options.timeout = milliseconds(300);
  testing::AsyncRedisOnLoop authenticated(options);
  const Answer whoami = CallOn(authenticated, {"ACL", "WHOAMI"});
  ASSERT_TRUE(whoami.status.ok()) << whoami.status;
  EXPECT_EQ(whoami.text, user.name());

  // Refused, the connection is dropped rather than kept as the default user (which the test
  // Redis leaves open, so a command written right behind the AUTH may still pass).
  options.password = "not-the-password";
  testing::AsyncRedisOnLoop refused(options);
  Answer ping;
  for (int attempt = 0; attempt < 20 && ping.status.ok(); ++attempt) {
    ping = CallOn(refused, {"PING"});
  }
  EXPECT_EQ(ping.status.code(), absl::StatusCode::kUnavailable) << ping.status;
  EXPECT_NE(ping.status.message().find("AUTH refused"), std::string_view::npos) << ping.status;
  EXPECT_EQ(ping.status.message().find("not-the-password"), std::string_view::npos);
}

TEST_F(RedisAsyncClientTest, CommandsOfOneIterationLeaveInOneWriteAndAnswerInOrder) {
  ASSERT_TRUE(Call({"PING"}).status.ok());  // connected
  constexpr int kCommands = 50;
  std::vector<long long> replies;
  const int64_t reads_before = admin_.ReadsProcessed();
  for (int i = 0; i < kCommands; ++i) {
    client_->Command({"INCR", prefix_ + "counter"}, [&](absl::StatusOr<const redisReply*> reply) {
      replies.push_back(reply.ok() ? (*reply)->integer : -1);
    });
  }
  ASSERT_TRUE(RunUntil([&] { return replies.size() == kCommands; }));
  EXPECT_EQ(admin_.ReadsProcessed() - reads_before, 2)
      << "the 50 commands in one read, and the INFO that counted them";
  for (int i = 0; i < kCommands; ++i) EXPECT_EQ(replies[i], i + 1);
  EXPECT_EQ(client_->pending(), 0u);
}

TEST_F(RedisAsyncClientTest, AnErrorReplyFailsOnlyItsCommand) {
  ASSERT_TRUE(Call({"SET", prefix_ + "text", "x"}).status.ok());
  std::vector<Answer> answers;
  auto record = [&](absl::StatusOr<const redisReply*> reply) {
    answers.push_back(AnswerOf(reply));
  };
  client_->Command({"INCR", prefix_ + "text"}, record);  // WRONGTYPE-like: not an integer
  client_->Command({"GET", prefix_ + "text"}, record);
  ASSERT_TRUE(RunUntil([&] { return answers.size() == 2; }));
  EXPECT_EQ(answers[0].status.code(), absl::StatusCode::kInternal);
  EXPECT_TRUE(answers[1].status.ok());
  EXPECT_EQ(answers[1].text, "x");
}

TEST_F(RedisAsyncClientTest, CommandManyPassesEachReplyInOrderThenTheFirstFailure) {
  ASSERT_TRUE(Call({"SET", prefix_ + "text", "x"}).status.ok());
  std::vector<std::pair<size_t, std::string>> replies;
  std::optional<absl::Status> done;
  const int64_t reads_before = admin_.ReadsProcessed();
  client_->CommandMany(
      {{"GET", prefix_ + "text"}, {"INCR", prefix_ + "text"}, {"ECHO", "y"}},
      [&](size_t index, const redisReply* reply) {
        replies.emplace_back(index, std::string(TextOfReply(reply)));
      },
      [&](absl::Status status) { done = std::move(status); });
  ASSERT_TRUE(RunUntil([&] { return done.has_value(); }));
  EXPECT_EQ(admin_.ReadsProcessed() - reads_before, 2)
      << "the three commands in one read, and the INFO that counted them";
  EXPECT_EQ(replies, (std::vector<std::pair<size_t, std::string>>{{0, "x"}, {2, "y"}}))
      << "the error reply is not passed on";
  EXPECT_EQ(done->code(), absl::StatusCode::kInternal);

  std::optional<absl::Status> nothing;
  client_->CommandMany(
      {}, [](size_t, const redisReply*) { ADD_FAILURE() << "no reply expected"; },
      [&](absl::Status status) { nothing = std::move(status); });
  ASSERT_TRUE(nothing.has_value()) << "no commands: done at once";
  EXPECT_TRUE(nothing->ok());
}

TEST_F(RedisAsyncClientTest, ALostConnectionFailsWhatIsPendingAndComesBack) {
  const long long id = Call({"CLIENT", "ID"}).integer;
  ASSERT_GT(id, 0);
  std::optional<Answer> blocked;
  // Pending when the connection is killed: BLPOP on a key nobody pushes to.
  client_->Command({"BLPOP", prefix_ + "never", "0"},
                   [&](absl::StatusOr<const redisReply*> reply) { blocked = AnswerOf(reply); });
  ASSERT_TRUE(RunUntil([&] { return client_->pending() == 1; }));
  ASSERT_TRUE(admin_.Run({"CLIENT", "KILL", "ID", std::to_string(id)}).ok());
  ASSERT_TRUE(RunUntil([&] { return blocked.has_value(); }));
  EXPECT_EQ(blocked->status.code(), absl::StatusCode::kUnavailable) << blocked->status;
  ASSERT_TRUE(RunUntil([&] { return client_->connected(); })) << "did not connect again";
  EXPECT_TRUE(Call({"PING"}).status.ok());
  EXPECT_NE(Call({"CLIENT", "ID"}).integer, id);
}

TEST_F(RedisAsyncClientTest, AStalledServerTimesOutAndIsUsedAgainOnceItAnswers) {
  ASSERT_TRUE(Call({"PING"}).status.ok());
  ASSERT_TRUE(admin_.Run({"CLIENT", "PAUSE", "1000", "WRITE"}).ok());
  const auto started = std::chrono::steady_clock::now();
  const Answer stalled = Call({"INCR", prefix_ + "paused"});
  const auto waited = std::chrono::steady_clock::now() - started;
  EXPECT_EQ(stalled.status.code(), absl::StatusCode::kUnavailable) << stalled.status;
  EXPECT_LT(waited, milliseconds(900)) << "failed only when the pause ended";
  ASSERT_TRUE(admin_.Run({"CLIENT", "UNPAUSE"}).ok());
  ASSERT_TRUE(RunUntil([&] { return client_->connected(); }));
  EXPECT_TRUE(Call({"INCR", prefix_ + "paused"}).status.ok());
}

// A loop busy for longer than the timeout (here: not run at all) could neither write a command
// nor read its reply meanwhile: that is not Redis's delay, and the command is answered.
TEST_F(RedisAsyncClientTest, ABusyLoopIsNotARedisTimeout) {
  ASSERT_TRUE(Call({"PING"}).status.ok());
  std::optional<Answer> answer;
  client_->Command({"INCR", prefix_ + "busy"}, [&](absl::StatusOr<const redisReply*> reply) {
    answer.emplace(AnswerOf(reply));
  });
  std::this_thread::sleep_for(milliseconds(600));  // twice the timeout, the loop not running
  ASSERT_TRUE(RunUntil([&] { return answer.has_value(); }));
  EXPECT_TRUE(answer->status.ok()) << answer->status;
  EXPECT_EQ(answer->integer, 1);
  EXPECT_TRUE(client_->connected());
}

TEST_F(RedisAsyncClientTest, ScriptsAreLoadedAgainAfterTheServerLostThem) {
  const std::string sha = client_->LoadScript("return 'script:' .. ARGV[1]");
  EXPECT_EQ(Call({"EVALSHA", sha, "0", "one"}).text, "script:one");
  ASSERT_TRUE(admin_.Run({"SCRIPT", "FLUSH"}).ok());
  EXPECT_EQ(Call({"EVALSHA", sha, "0", "two"}).status.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(Call({"EVALSHA", sha, "0", "three"}).text, "script:three");
}

TEST(RedisAsyncClientUnreachableTest, CommandsFailFastWhileTheServerIsDown) {
  RedisOptions options;
  options.port = 1;  // nothing listens there
  options.timeout = milliseconds(300);
  testing::AsyncRedisOnLoop redis(options);
  RedisAsyncClient& client = redis.client();
  std::vector<absl::Status> statuses;
  client.Command({"PING"}, [&](absl::StatusOr<const redisReply*> reply) {
    statuses.push_back(reply.status());
  });
  ASSERT_TRUE(redis.RunUntil([&] { return !statuses.empty(); }));
  EXPECT_EQ(statuses[0].code(), absl::StatusCode::kUnavailable);
  // The refusal itself, not the timeout of a connection that never learned of it.
  EXPECT_THAT(statuses[0].message(), HasSubstr("Connection refused")) << statuses[0];
  // Now not connected: the next command is refused at once, without waiting for the loop.
  client.Command({"PING"}, [&](absl::StatusOr<const redisReply*> reply) {
    statuses.push_back(reply.status());
  });
  ASSERT_EQ(statuses.size(), 2u);
  EXPECT_EQ(statuses[1].code(), absl::StatusCode::kUnavailable);
}

}  // namespace
}  // namespace im::store
