// What one batch of sends costs the real servers, counted by the servers themselves (Redis
// INFO, MariaDB's global status) on a logic node running on the test Redis and MariaDB: the
// claims and seqs of a batch are one Redis round trip, its messages one transaction, and the
// statements per batch do not grow with its size.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/token.h"
#include "logic/backends/cluster_stores.h"
#include "logic/tests/logic_node_fixture.h"
#include "store/tests/test_mysql.h"
#include "store/tests/test_redis.h"

namespace im::logic {
namespace {

using testing::Stream;

struct ServerCounters {
  int64_t redis_reads = 0;      // read events Redis processed (one per round trip)
  int64_t mysql_commits = 0;    // Com_commit
  int64_t mysql_questions = 0;  // statements the clients sent
  int64_t delivery_batches = 0;
};

class BatchCostTest : public testing::LogicNodeFixture {
 protected:
  void SetUp() override {
    // One connection to each server and one writer: every measured batch finds its connection
    // made, its scripts loaded and its statements prepared.
    options_.redis = store::testing::TestRedisOptions();
    options_.redis.connections = 1;
    options_.mysql = store::testing::TestMySqlOptions();
    options_.mysql.pool_size = 1;
    options_.writers = 1;
    ASSERT_TRUE(MigrateSchema(options_, std::chrono::seconds(10)).ok());
    StartServer(ClusterStores(options_, &metrics_));
  }

  ServerCounters Counters() {
    ServerCounters counters;
    counters.redis_reads = redis_admin_.ReadsProcessed();
    counters.mysql_commits = GlobalStatus("COM_COMMIT");
    counters.mysql_questions = GlobalStatus("QUESTIONS");
    counters.delivery_batches =
        static_cast<int64_t>(metrics_.delivery_batch_size.Collect().histogram.sample_count);
    return counters;
  }

  int64_t GlobalStatus(const std::string& name) {
    return store::testing::QueryInt(
        mysql_admin_,
        "SELECT CAST(VARIABLE_VALUE AS SIGNED) FROM information_schema.GLOBAL_STATUS "
        "WHERE VARIABLE_NAME = '" +
            name + "'");
  }

  // Sends one message in each of the conversations first..first+count-1 (user a<i> to b<i>) as
  // one IngressBatch, expects each stored with `seq`, and waits until delivery handled them.
  void SendOneBatch(Stream& stream, size_t first, size_t count, uint64_t seq) {
    im::v1::IngressBatch batch;
    for (size_t i = first; i < first + count; ++i) {
      const uint64_t id = ++entry_id_;
      *batch.add_entries() =
          Entry(id, prefix_ + "a" + std::to_string(i),
                SendTo(prefix_ + "b" + std::to_string(i), "m" + std::to_string(id)));
    }
    ASSERT_TRUE(stream.Write(batch));
    std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(stream, count);
    ASSERT_EQ(answers.size(), count);
    for (auto& [id, egress] : answers) {
      ASSERT_EQ(egress.response().send_resp().status().code(), im::v1::OK)
          << egress.response().send_resp().status().message();
      EXPECT_EQ(egress.response().send_resp().seq(), seq) << id;
    }
    delivered_ += count;
    // The dedup answers and session lookups follow the acks, on the delivery stage, which counts
    // a batch once it is delivered.
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (metrics_.delivery_batch_size.Collect().histogram.sample_sum <
               static_cast<double>(delivered_) &&
           std::chrono::steady_clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    ASSERT_EQ(metrics_.delivery_batch_size.Collect().histogram.sample_sum,
              static_cast<double>(delivered_))
        << "delivery did not finish within 10 s";
  }

  // What one batch of `count` sends cost, on conversations that already have messages.
  ServerCounters CostOfOneBatch(Stream& stream, size_t first, size_t count) {
    const ServerCounters before = Counters();
    SendOneBatch(stream, first, count, /*seq=*/2);
    const ServerCounters after = Counters();
    return ServerCounters{after.redis_reads - before.redis_reads,
                          after.mysql_commits - before.mysql_commits,
                          after.mysql_questions - before.mysql_questions,
                          after.delivery_batches - before.delivery_batches};
  }

  const std::string prefix_ = store::testing::UniquePrefix();
  store::testing::RedisAdmin redis_admin_;
  store::MySqlConnectionPool mysql_admin_{store::testing::TestMySqlOptions()};
  uint64_t entry_id_ = 0;
  size_t delivered_ = 0;
};

TEST_F(BatchCostTest, ABatchOfSendsIsOneLedgerRoundTripAndOneTransactionWhateverItsSize) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  constexpr size_t kSmall = 8;
  constexpr size_t kLarge = 64;
  // Each conversation's first message: its counter restored from MySQL and its rows made.
  SendOneBatch(*stream, 0, kLarge, /*seq=*/1);
  SendOneBatch(*stream, kLarge, kSmall, /*seq=*/1);

  const ServerCounters small = CostOfOneBatch(*stream, kLarge, kSmall);
  const ServerCounters large = CostOfOneBatch(*stream, 0, kLarge);
  for (const ServerCounters& cost : {small, large}) {
    EXPECT_EQ(cost.mysql_commits, 1) << "one transaction stores the batch";
    EXPECT_EQ(cost.delivery_batches, 1) << "the transaction's messages are delivered together";
    // One round trip for the claims and seqs, one for the dedup answers and the recipients'
    // sessions together (the send loop issues them in one iteration), and the INFO that counted
    // them.
    EXPECT_EQ(cost.redis_reads, 3);
  }
  EXPECT_EQ(large.mysql_questions, small.mysql_questions)
      << "the statements of a batch do not grow with its size";
  // Single chats take their claims on the send loop (no thread blocked on the round trip).
  EXPECT_EQ(metrics_.send_loop_batches.Value(), 4);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// A stream batch's syncs: their pages in two statements (the messages, then the max seqs),
// whatever the batch's size, where each sync cost two before.
TEST_F(BatchCostTest, ABatchOfSyncsIsTwoStatementsWhateverItsSize) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  constexpr size_t kSmall = 8;
  constexpr size_t kLarge = 64;
  SendOneBatch(*stream, 0, kLarge, /*seq=*/1);
  auto sync_batch = [&](size_t count) {
    im::v1::IngressBatch batch;
    for (size_t i = 0; i < count; ++i) {
      const std::string a = prefix_ + "a" + std::to_string(i);
      const std::string b = prefix_ + "b" + std::to_string(i);
      im::v1::Frame sync;
      sync.mutable_sync_req()->set_conv_id("s:" + std::min(a, b) + ":" + std::max(a, b));
      *batch.add_entries() = Entry(++entry_id_, b, std::move(sync));
    }
    EXPECT_TRUE(stream->Write(batch));
    std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, count);
    EXPECT_EQ(answers.size(), count);
    for (const auto& [id, egress] : answers) {
      const im::v1::SyncResp& resp = egress.response().sync_resp();
      EXPECT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
      ASSERT_EQ(resp.messages_size(), 1) << id;
      EXPECT_EQ(resp.messages(0).seq(), 1u);
      EXPECT_EQ(resp.max_seq(), 1u);
      EXPECT_FALSE(resp.has_more());
    }
  };
  for (size_t count : {kSmall, kLarge}) {
    sync_batch(count);  // the statements of this size prepared
    const int64_t before = GlobalStatus("QUESTIONS");
    sync_batch(count);
    // The two statements, and the GLOBAL_STATUS query that counted them.
    EXPECT_EQ(GlobalStatus("QUESTIONS") - before, 3) << count << " syncs";
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// Group sends take the send loop too: the batch's groups' version tokens in one round trip (a
// list this node does not hold yet is loaded on the executor once, and the batch comes back to
// the loop), then the claims and seqs in one more; each send is answered OK with its own seq.
TEST_F(BatchCostTest, GroupSendsTakeTheSendLoopWithMembershipFromTheNodesCopy) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  constexpr size_t kGroups = 4;
  std::vector<std::string> conv_ids;
  for (size_t g = 0; g < kGroups; ++g) {
    im::v1::Frame create;
    create.mutable_group_create_req()->set_name("g" + std::to_string(g));
    create.mutable_group_create_req()->add_members(prefix_ + "member");
    im::v1::IngressBatch batch;
    *batch.add_entries() = Entry(++entry_id_, prefix_ + "owner", std::move(create));
    ASSERT_TRUE(stream->Write(batch));
    std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, 1);
    ASSERT_EQ(answers.size(), 1u);
    const im::v1::GroupCreateResp& created = answers.begin()->second.response().group_create_resp();
    ASSERT_EQ(created.status().code(), im::v1::OK) << created.status().message();
    conv_ids.push_back("g:" + created.group_id());
  }
  auto send_round = [&](uint64_t seq) {
    im::v1::IngressBatch batch;
    for (size_t g = 0; g < kGroups; ++g) {
      for (const char* sender : {"owner", "member"}) {
        im::v1::Frame send;
        send.mutable_send_req()->set_conv_id(conv_ids[g]);
        send.mutable_send_req()->set_client_msg_id("c" + std::to_string(++entry_id_));
        send.mutable_send_req()->set_body("hello");
        *batch.add_entries() = Entry(entry_id_, prefix_ + sender, std::move(send));
      }
    }
    ASSERT_TRUE(stream->Write(batch));
    std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, 2 * kGroups);
    ASSERT_EQ(answers.size(), 2 * kGroups);
    std::map<std::string, std::vector<uint64_t>> seqs;
    for (auto& [id, egress] : answers) {
      const im::v1::SendResp& resp = egress.response().send_resp();
      ASSERT_EQ(resp.status().code(), im::v1::OK) << resp.status().message();
      seqs[resp.conv_id()].push_back(resp.seq());
    }
    for (auto& [conv_id, taken] : seqs) {
      std::sort(taken.begin(), taken.end());
      EXPECT_EQ(taken, (std::vector<uint64_t>{seq, seq + 1})) << conv_id;
    }
  };
  const double loop_batches_before = metrics_.send_loop_batches.Value();
  const double loads_before = metrics_.group_list_loads.Value();
  // Seq 1 of each group is its "group_created" notice. The first round loads the lists (creating
  // them cached nothing on this node).
  send_round(2);
  send_round(4);
  send_round(6);
  EXPECT_EQ(metrics_.send_loop_batches.Value() - loop_batches_before, 3)
      << "every round's claims were taken on the send loop";
  EXPECT_LE(metrics_.group_list_loads.Value() - loads_before, kGroups)
      << "each list loaded from MySQL at most once";
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

// A stream batch's logins: their registrations, and each user's sessions for the device cap, in
// one round trip on the login loop, whatever the batch's size.
TEST_F(BatchCostTest, ABatchOfLoginsIsOneRedisRoundTripWhateverItsSize) {
  grpc::ClientContext context;
  std::unique_ptr<Stream> stream = stub_->Stream(&context);
  uint64_t entry_id = 0;
  auto login_batch = [&](size_t count) {
    im::v1::IngressBatch batch;
    for (size_t i = 0; i < count; ++i) {
      const std::string uid = prefix_ + "u" + std::to_string(entry_id);
      im::v1::Frame login;
      login.mutable_login_req()->set_device("phone");
      login.mutable_login_req()->set_token(
          common::SignToken({uid, common::UnixMillis() / 1000 + 3600, ""}, options_.token_secret));
      im::v1::Ingress entry = Entry(++entry_id, "", std::move(login));
      entry.mutable_caller()->set_conn_id(1000 + entry_id);
      *batch.add_entries() = std::move(entry);
    }
    return batch;
  };
  // Presence hears of every login, on its own thread: wait for it so the count is the batch's.
  double published = 0;
  auto wait_for_presence = [&](size_t logins) {
    published += static_cast<double>(logins);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (metrics_.presence_published.Value() < published &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    ASSERT_EQ(metrics_.presence_published.Value(), published);
  };
  ASSERT_TRUE(stream->Write(login_batch(1)));  // the connection made, the scripts loaded
  ASSERT_EQ(ReadAnswers(*stream, 1).size(), 1u);
  EXPECT_EQ(metrics_.login_loop_batches.Value(), 1) << "registered on the login loop";
  wait_for_presence(1);
  for (size_t count : {8, 64}) {
    const int64_t reads_before = redis_admin_.ReadsProcessed();
    ASSERT_TRUE(stream->Write(login_batch(count)));
    std::map<uint64_t, im::v1::Egress> answers = ReadAnswers(*stream, count);
    wait_for_presence(count);
    const int64_t reads = redis_admin_.ReadsProcessed() - reads_before;
    ASSERT_EQ(answers.size(), count);
    for (const auto& [id, egress] : answers) {
      EXPECT_EQ(egress.response().login_resp().status().code(), im::v1::OK)
          << egress.response().login_resp().status().message();
    }
    EXPECT_EQ(reads, 3) << count
                        << " logins: the registrations (with the sessions), presence's record "
                           "of the batch (last seen and watchers: nobody watches them), and "
                           "the INFO";
  }
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

}  // namespace
}  // namespace im::logic
