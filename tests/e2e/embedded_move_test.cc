// The move from the embedded node to the cluster (docs/embedded.md): what im-server stored,
// copied by scripts/embedded-to-cluster.sh into an empty MySQL database, is what the cluster then
// serves: the same messages at the same seqs, the same read cursors and groups, and new messages
// numbered after them.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/embedded_server.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"
#include "tests/e2e/test_processes.h"

#ifndef IM_LOGIC_BINARY
#error "IM_LOGIC_BINARY must name the im-logic binary"
#endif
#ifndef IM_SOURCE_DIR
#error "IM_SOURCE_DIR must name the repository root (for scripts/embedded-to-cluster.sh)"
#endif

namespace im::e2e {
namespace {

using im::testing::Subprocess;

constexpr Millis kToolTimeout{60'000};

// Runs `argv` with the test MariaDB named in IM_MYSQL_* (database `database`) and PATH; its exit
// status, or nullopt when it did not end in time. Its output goes to `log`.
std::optional<int> RunWithMySql(const std::vector<std::string>& argv, const std::string& database,
                                const std::string& log) {
  const std::optional<Endpoint> mysql = TestMySql();
  if (!mysql) return std::nullopt;
  const char* path = std::getenv("PATH");
  absl::StatusOr<std::unique_ptr<Subprocess>> process =
      Subprocess::Start(argv,
                        {{"IM_MYSQL_HOST", mysql->host},
                         {"IM_MYSQL_PORT", std::to_string(mysql->port)},
                         {"IM_MYSQL_USER", "im"},
                         {"IM_MYSQL_PASSWORD", "im-dev"},
                         {"IM_MYSQL_DATABASE", database},
                         {"IM_DEV_MODE", "true"},
                         {"PATH", path != nullptr ? path : "/usr/bin:/bin"}},
                        {.stderr_path = log});
  if (!process.ok()) {
    ADD_FAILURE() << "cannot start " << argv.at(0) << ": " << process.status();
    return std::nullopt;
  }
  return (*process)->Wait(kToolTimeout);
}

// An empty database of the test MariaDB (user im may create im_*), dropped at the end.
class ScratchDatabase {
 public:
  explicit ScratchDatabase(const std::string& prefix, const std::string& log_dir)
      : log_(log_dir + "/mariadb.log") {
    name_ = "im_move_";
    for (char c : prefix) name_ += std::isalnum(static_cast<unsigned char>(c)) ? c : '_';
    created_ = Sql("CREATE DATABASE " + name_);
  }
  ~ScratchDatabase() {
    if (created_) Sql("DROP DATABASE " + name_);
  }
  bool created() const { return created_; }
  const std::string& name() const { return name_; }

 private:
  bool Sql(const std::string& statement) {
    const std::string client = FindInPath("mariadb");
    const std::optional<Endpoint> mysql = TestMySql();
    if (client.empty() || !mysql) {
      ADD_FAILURE() << "no mariadb client or test MariaDB";
      return false;
    }
    const std::optional<int> status =
        RunWithMySql({client, "--no-defaults", "--protocol=TCP", "--host=" + mysql->host,
                      "--port=" + std::to_string(mysql->port), "--user=im", "--password=im-dev",
                      "-e", statement},
                     "im", log_);
    EXPECT_EQ(status, 0) << statement << ": " << FileContents(log_);
    return status == 0;
  }

  std::string name_;
  std::string log_;
  bool created_ = false;
};

TEST(EmbeddedToClusterTest, TheClusterServesWhatTheEmbeddedNodeStored) {
  const std::string prefix = UniquePrefix();
  EmbeddedServer server(prefix);
  ASSERT_TRUE(server.Start());
  auto alice = server.Device("alice", "phone");
  auto bob = server.Device("bob", "phone");
  ASSERT_TRUE(alice->Login(server.client_port(0)));
  ASSERT_TRUE(bob->Login(server.client_port(0)));
  const std::string conv = SingleConvId(alice->uid(), bob->uid());
  std::vector<im::v1::SendReq> reqs;
  for (int i = 0; i < 30; ++i) {
    im::v1::SendReq& req = reqs.emplace_back();
    req.set_to_uid(bob->uid());
    req.set_client_msg_id(absl::StrCat("m-", i));
    req.set_type(im::v1::TEXT);
    req.set_body(absl::StrCat("before the move ", i));
  }
  const auto sent = alice->SendPipelined(reqs, 8);
  for (const auto& resp : sent) ASSERT_TRUE(resp && resp->status().code() == im::v1::OK);
  const auto group = alice->GroupCreate("team", {bob->uid()});
  ASSERT_TRUE(group && group->status().code() == im::v1::OK);
  for (int i = 0; i < 5; ++i) {
    const auto resp = alice->SendToConv(group->conv_id(), absl::StrCat("g-", i), "to the team");
    ASSERT_TRUE(resp && resp->status().code() == im::v1::OK);
  }
  const auto read = bob->Read(conv, sent[9]->seq());
  ASSERT_TRUE(read && read->status().code() == im::v1::OK);
  ASSERT_TRUE(server.Stop());

  // The tools' logs go with the node's data (removed last, after the cluster and the database).
  const std::string logs = server.data_dir();
  ScratchDatabase database(prefix, logs);
  ASSERT_TRUE(database.created());
  ASSERT_EQ(
      RunWithMySql({IM_LOGIC_BINARY, "--migrate-only"}, database.name(), logs + "/migrate.log"), 0)
      << FileContents(logs + "/migrate.log");
  ASSERT_EQ(RunWithMySql(
                {"/bin/bash", IM_SOURCE_DIR "/scripts/embedded-to-cluster.sh", server.data_dir()},
                database.name(), logs + "/move.log"),
            0)
      << FileContents(logs + "/move.log");

  ClusterOptions options;
  options.prefix = prefix;
  options.logic_env["IM_MYSQL_DATABASE"] = database.name();
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  auto bob_again = cluster.Device("bob", "phone");
  ASSERT_TRUE(bob_again->Login(cluster.client_port(1)));
  const TestDevice::SyncResult synced = bob_again->SyncAll(conv, 0, 50);
  ASSERT_TRUE(synced.ok) << synced.error;
  ASSERT_EQ(synced.messages.size(), sent.size());
  for (size_t i = 0; i < sent.size(); ++i) {
    EXPECT_EQ(synced.messages[i].seq(), sent[i]->seq());
    EXPECT_EQ(synced.messages[i].msg_id(), sent[i]->msg_id());
    EXPECT_EQ(synced.messages[i].body(), reqs[i].body());
  }
  const std::optional<im::v1::Conversation> listed = bob_again->FindConversation(conv, 100);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->read_seq(), sent[9]->seq());
  EXPECT_EQ(listed->unread(), sent.size() - 10);
  const TestDevice::GroupMembersResult members = bob_again->ListGroupMembers(group->group_id(), 10);
  ASSERT_TRUE(members.ok) << members.error;
  EXPECT_EQ(members.members.size(), 2u);
  const TestDevice::SyncResult group_synced = bob_again->SyncAll(group->conv_id(), 0, 50);
  ASSERT_TRUE(group_synced.ok) << group_synced.error;
  EXPECT_EQ(group_synced.messages.size(), 6u);  // the "group_created" notice and five messages

  // New messages are numbered after the copied ones, and delivered.
  auto alice_again = cluster.Device("alice", "phone");
  ASSERT_TRUE(alice_again->Login(cluster.client_port(0)));
  const auto after = alice_again->SendTo(bob_again->uid(), "after", "after the move");
  ASSERT_TRUE(after && after->status().code() == im::v1::OK);
  EXPECT_GT(after->seq(), sent.back()->seq());
  EXPECT_TRUE(bob_again->WaitForPushed(conv, 1, Millis(15'000)));
  // The same client_msg_id sent before the move is recognized after it: stored once.
  const auto resent = alice_again->Send(reqs[0]);
  ASSERT_TRUE(resent && resent->status().code() == im::v1::OK);
  EXPECT_EQ(resent->seq(), sent[0]->seq());
}

}  // namespace
}  // namespace im::e2e
