// A conversation's seq counter behind its stored messages, as when Redis comes back from a crash
// without its last writes (appendfsync everysec): a send that gets a seq another message holds
// is answered ABORTED (the client retries it), the counter is restored from MySQL, and the retry
// is stored above every stored message. Before, such a send failed INTERNAL and took the whole
// write batch with it. On the test Redis and MariaDB.
#include <gtest/gtest.h>

#include <map>
#include <string>
#include <thread>

#include "logic/backends/cluster_stores.h"
#include "logic/tests/logic_node_fixture.h"
#include "store/redis_seq_allocator.h"
#include "store/tests/test_mysql.h"
#include "store/tests/test_redis.h"
#include "store/tests/unique_prefix.h"

namespace im::logic::testing {
namespace {

class SeqCounterBehindTest : public LogicNodeFixture {
 protected:
  void SetUp() override {
    options_.redis = store::testing::TestRedisOptions();
    options_.mysql = store::testing::TestMySqlOptions();
    ASSERT_TRUE(MigrateSchema(options_, std::chrono::seconds(10)).ok());
    StartServer(ClusterStores(options_, &metrics_));
    stream_ = stub_->Stream(&context_);
  }
  void TearDown() override {
    stream_->WritesDone();
    LogicNodeFixture::TearDown();
  }

  // alice's send of `client_msg_id` to bob, answered.
  im::v1::SendResp Send(const std::string& client_msg_id) {
    const uint64_t id = ++entry_id_;
    im::v1::IngressBatch batch;
    *batch.add_entries() = Entry(id, alice_, SendTo(bob_, client_msg_id));
    EXPECT_TRUE(stream_->Write(batch));
    std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream_, 1);
    return answers[id].response().send_resp();
  }

  const std::string alice_ = store::testing::UniquePrefix() + "alice";
  const std::string bob_ = store::testing::UniquePrefix() + "bob";
  grpc::ClientContext context_;
  std::unique_ptr<Stream> stream_;
  uint64_t entry_id_ = 0;
};

TEST_F(SeqCounterBehindTest, ASendGivenATakenSeqIsAbortedAndItsRetryStoredAboveTheRest) {
  for (int i = 1; i <= 3; ++i) {
    const im::v1::SendResp resp = Send("m" + std::to_string(i));
    ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
    ASSERT_EQ(resp.seq(), static_cast<uint64_t>(i));
  }
  const std::string conv = Send("m1").conv_id();  // a retry: answered with the stored one
  // Redis lost its last two increments.
  store::testing::RedisAdmin admin;
  ASSERT_TRUE(admin.Run({"SET", store::RedisSeqAllocator::KeyOf(conv), "1"}).ok());

  const im::v1::SendResp refused = Send("m4");
  EXPECT_EQ(refused.status().code(), im::v1::ABORTED) << refused.status().message();
  EXPECT_EQ(metrics_.seq_counters_behind.Value(), 1);

  // The client sends it again with the same client_msg_id, as the SDK does (the counter is
  // dropped on the executor: a retry that comes first may be refused the same way once more).
  im::v1::SendResp stored;
  for (int attempt = 0; attempt < 20; ++attempt) {
    stored = Send("m4");
    if (stored.status().code() != im::v1::ABORTED) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_EQ(stored.status().code(), im::v1::OK) << stored.status().message();
  EXPECT_GT(stored.seq(), 3u) << "stored above every stored message";
  const im::v1::SendResp next = Send("m5");
  ASSERT_EQ(next.status().code(), im::v1::OK);
  EXPECT_EQ(next.seq(), stored.seq() + 1);
  EXPECT_EQ(Send("m4").seq(), stored.seq()) << "the retry of a stored send finds it";
}

}  // namespace
}  // namespace im::logic::testing
