// Group read receipts through the SDK against the real binaries, on the cluster and on the
// embedded node: a sender's devices hear as members read its messages, and anyone in the group can
// ask how many and who have read one; above the size limit, counts only and no pushes.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "im/v1/client.pb.h"
#include "sdk/client.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/sdk_recorder.h"

namespace im::e2e {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// Groups of 3 get names and pushes; a group of 4 is above the limit.
constexpr int kReceiptLimit = 3;

class GroupReceiptsTest : public DeploymentTest {
 protected:
  void SetUp() override {
    ClusterOptions options;
    options.logic_env = {{"IM_LOGIC_RECEIPT_MAX_GROUP_MEMBERS", std::to_string(kReceiptLimit)}};
    cluster_ = Deploy(options);
    ASSERT_TRUE(cluster_->Start());
    for (const char* name : {"alice", "bob", "carol", "dan"}) {
      const std::string uid = cluster_->Uid(name);
      seen_[name] = std::make_unique<SdkRecorder>();
      clients_[name] = std::make_unique<im::sdk::Client>(
          OptionsFor(uid, "phone", {Address(cluster_->client_port(0))}), seen_[name].get());
      ASSERT_TRUE(StartAndWait(*clients_[name], *seen_[name])) << name;
    }
  }

  std::string CreateGroup(const std::vector<std::string>& names) {
    std::vector<std::string> members;
    for (const std::string& name : names) members.push_back(cluster_->Uid(name));
    std::promise<std::string> created;
    clients_["alice"]->CreateGroup("team", members,
                                   [&created](im::sdk::Status status, im::sdk::GroupCreated g) {
                                     EXPECT_TRUE(status.ok()) << status.message;
                                     created.set_value(g.conv_id);
                                   });
    return created.get_future().get();
  }
  uint64_t Send(const std::string& name, const std::string& conv_id) {
    SdkRecorder& seen = *seen_[name];
    const std::string id = clients_[name]->Send(conv_id, "news");
    uint64_t seq = 0;
    EXPECT_TRUE(seen.WaitFor(
        [&](const SdkRecorder& r) {
          auto it = r.send_results().find(id);
          if (it == r.send_results().end()) return false;
          seq = it->second.front().seq;
          return true;
        },
        seconds(15)));
    return seq;
  }
  void Read(const std::string& name, const std::string& conv_id, uint64_t seq) {
    std::promise<void> done;
    clients_[name]->MarkRead(conv_id, seq, [&done](im::sdk::Status status, uint64_t) {
      EXPECT_TRUE(status.ok()) << status.message;
      done.set_value();
    });
    done.get_future().get();
  }
  im::sdk::GroupReaders Readers(const std::string& name, const std::string& conv_id, uint64_t seq) {
    std::promise<im::sdk::GroupReaders> answer;
    clients_[name]->ListReaders(conv_id, seq, true,
                                [&answer](im::sdk::Status status, im::sdk::GroupReaders r) {
                                  EXPECT_TRUE(status.ok()) << status.message;
                                  answer.set_value(std::move(r));
                                });
    return answer.get_future().get();
  }
  // The receipts `name`'s client got for conv_id, by reader (the latest cursor of each).
  std::map<std::string, uint64_t> Receipts(const std::string& name, const std::string& conv_id) {
    std::map<std::string, uint64_t> latest;
    seen_[name]->WaitFor(
        [&](const SdkRecorder& r) {
          for (const im::sdk::ReadReceipt& receipt : r.read_receipts()) {
            if (receipt.conv_id == conv_id) latest[receipt.reader] = receipt.read_seq;
          }
          return true;
        },
        milliseconds(0));
    return latest;
  }

  std::unique_ptr<ChatDeployment> cluster_;
  std::map<std::string, std::unique_ptr<SdkRecorder>> seen_;
  std::map<std::string, std::unique_ptr<im::sdk::Client>> clients_;
};
IM_INSTANTIATE_DEPLOYMENTS(GroupReceiptsTest);

TEST_P(GroupReceiptsTest, TheSenderHearsWhoReadAndAnyMemberCanAsk) {
  const std::string group = CreateGroup({"bob", "carol"});
  const uint64_t first = Send("bob", group);
  const uint64_t second = Send("bob", group);
  Read("alice", group, second);
  Read("carol", group, first);
  const std::string alice = cluster_->Uid("alice");
  const std::string carol = cluster_->Uid("carol");
  ASSERT_TRUE(seen_["bob"]->WaitFor(
      [&](const SdkRecorder& r) {
        int seen = 0;
        for (const im::sdk::ReadReceipt& receipt : r.read_receipts()) {
          seen += receipt.conv_id == group &&
                  ((receipt.reader == alice && receipt.read_seq == second) ||
                   (receipt.reader == carol && receipt.read_seq == first));
        }
        return seen == 2;
      },
      seconds(10)))
      << "bob's device did not hear both reads";

  const im::sdk::GroupReaders of_first = Readers("carol", group, first);
  EXPECT_EQ(of_first.read_count, 2u);
  EXPECT_EQ(of_first.unread_count, 0u);
  EXPECT_EQ(of_first.readers, (std::vector<std::string>{alice, carol}));
  const im::sdk::GroupReaders of_second = Readers("bob", group, second);
  EXPECT_EQ(of_second.read_count, 1u);
  EXPECT_EQ(of_second.unread_count, 1u);
  EXPECT_EQ(of_second.readers, (std::vector<std::string>{alice}));
  EXPECT_FALSE(of_second.counts_only);
  EXPECT_TRUE(Receipts("alice", group).empty()) << "alice sent nothing: no receipts for her";
}

TEST_P(GroupReceiptsTest, AboveTheLimitCountsOnlyAndNoPushes) {
  const std::string group = CreateGroup({"bob", "carol", "dan"});
  const uint64_t seq = Send("bob", group);
  Read("alice", group, seq);
  Read("dan", group, seq);
  const im::sdk::GroupReaders readers = Readers("bob", group, seq);
  EXPECT_TRUE(readers.counts_only);
  EXPECT_EQ(readers.read_count, 2u);
  EXPECT_EQ(readers.unread_count, 1u);
  EXPECT_TRUE(readers.readers.empty());
  std::this_thread::sleep_for(milliseconds(500));  // a push would have come by now
  EXPECT_TRUE(Receipts("bob", group).empty());
}

TEST_P(GroupReceiptsTest, BadQueriesAreRefusedWithTheirCode) {
  const std::string group = CreateGroup({"bob"});
  const uint64_t seq = Send("bob", group);
  auto code_of = [&](const std::string& name, const std::string& conv_id, uint64_t at) {
    std::promise<int> code;
    clients_[name]->ListReaders(
        conv_id, at, true,
        [&code](im::sdk::Status status, im::sdk::GroupReaders) { code.set_value(status.code); });
    return code.get_future().get();
  };
  EXPECT_EQ(code_of("carol", group, seq), im::v1::NOT_MEMBER);
  EXPECT_EQ(code_of("bob", group, seq + 10), im::v1::NOT_FOUND);
  EXPECT_EQ(code_of("bob", SingleChat(cluster_->Uid("alice"), cluster_->Uid("bob")), 1),
            im::v1::INVALID_CONVERSATION);
  EXPECT_EQ(seen_["carol"]->ConnectsCopy(), 1) << "refusals cost no connection";
}

}  // namespace
}  // namespace im::e2e
