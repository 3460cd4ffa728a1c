// The embedded node's own promises, beyond the chat behaviour it shares with the cluster (those
// tests run on both): its data survives a restart and a kill -9 loses no acknowledged message,
// seqs go on from the database, SIGTERM drains, one data directory serves one process, and the
// cluster's settings are refused rather than ignored.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/embedded_server.h"
#include "tests/e2e/test_device.h"
#include "tests/e2e/test_processes.h"

#ifndef IM_SERVER_BINARY
#error "IM_SERVER_BINARY must name the im-server binary"
#endif

namespace im::e2e {
namespace {

constexpr Millis kPushTimeout{15'000};

bool IsOk(const std::optional<im::v1::SendResp>& resp) {
  return resp && resp->status().code() == im::v1::OK;
}

std::vector<im::v1::SendReq> Messages(const std::string& to_uid, const std::string& tag,
                                      int count) {
  std::vector<im::v1::SendReq> reqs;
  for (int i = 0; i < count; ++i) {
    im::v1::SendReq& req = reqs.emplace_back();
    req.set_to_uid(to_uid);
    req.set_client_msg_id(absl::StrCat(tag, "-", i));
    req.set_type(im::v1::TEXT);
    req.set_body(absl::StrCat("message ", i, " of ", tag));
  }
  return reqs;
}

// client_msg_id -> seq of every message in the conversation; fails the test on a duplicate.
std::map<std::string, uint64_t> StoredByClientMsgId(const std::vector<im::v1::Message>& messages) {
  std::map<std::string, uint64_t> stored;
  for (const im::v1::Message& m : messages) {
    EXPECT_TRUE(stored.emplace(m.client_msg_id(), m.seq()).second)
        << m.client_msg_id() << " stored twice (seqs " << stored[m.client_msg_id()] << " and "
        << m.seq() << ")";
  }
  return stored;
}

TEST(EmbeddedServerTest, MessagesAndGroupsSurviveARestartAndSeqsGoOnWithoutAGap) {
  EmbeddedServer server;
  ASSERT_TRUE(server.Start());
  auto alice = server.Device("alice", "phone");
  auto bob = server.Device("bob", "phone");
  ASSERT_TRUE(alice->Login(server.client_port(0)));
  const std::string conv = SingleConvId(alice->uid(), bob->uid());
  const auto first = alice->SendPipelined(Messages(bob->uid(), "before", 20), 8);
  for (const auto& resp : first) ASSERT_TRUE(IsOk(resp));
  const auto group = alice->GroupCreate("team", {bob->uid()});
  ASSERT_TRUE(group && group->status().code() == im::v1::OK) << group->ShortDebugString();
  ASSERT_TRUE(IsOk(alice->SendToConv(group->conv_id(), "g-1", "to the team")));

  ASSERT_TRUE(server.Stop());
  ASSERT_TRUE(server.Restart());
  ASSERT_TRUE(bob->Login(server.client_port(0)));
  const TestDevice::SyncResult synced = bob->SyncAll(conv, 0, 50);
  ASSERT_TRUE(synced.ok) << synced.error;
  ASSERT_EQ(synced.messages.size(), 20u) << SeqList(SeqsOf(synced.messages));
  for (size_t i = 0; i < synced.messages.size(); ++i) {
    EXPECT_EQ(synced.messages[i].seq(), first[i]->seq());
    EXPECT_EQ(synced.messages[i].body(), absl::StrCat("message ", i, " of before"));
  }
  EXPECT_TRUE(synced.holes.empty());
  const TestDevice::GroupMembersResult members = bob->ListGroupMembers(group->group_id(), 10);
  ASSERT_TRUE(members.ok) << members.error;
  EXPECT_EQ(members.members.size(), 2u);
  const TestDevice::SyncResult group_synced = bob->SyncAll(group->conv_id(), 0, 50);
  ASSERT_TRUE(group_synced.ok) << group_synced.error;
  ASSERT_FALSE(group_synced.messages.empty());
  EXPECT_EQ(group_synced.messages.back().body(), "to the team");

  // The counter restarts from the database: the next message takes the next seq, no hole.
  ASSERT_TRUE(alice->Login(server.client_port(0)));
  const std::optional<im::v1::SendResp> next = alice->SendTo(bob->uid(), "after", "after");
  ASSERT_TRUE(IsOk(next));
  EXPECT_EQ(next->seq(), first.back()->seq() + 1);
  EXPECT_TRUE(bob->WaitForPushed(conv, 1, kPushTimeout)) << "no push after the restart";
}

TEST(EmbeddedServerTest, KillNineLosesNoAcknowledgedMessageAndRetriesAreStoredOnce) {
  EmbeddedServer server;
  ASSERT_TRUE(server.Start());
  auto alice = server.Device("alice", "phone");
  auto bob = server.Device("bob", "phone");
  ASSERT_TRUE(alice->Login(server.client_port(0)));
  const std::string conv = SingleConvId(alice->uid(), bob->uid());
  const std::vector<im::v1::SendReq> reqs = Messages(bob->uid(), "flood", 3000);

  // Sends stream in while the process is killed.
  std::vector<std::optional<im::v1::SendResp>> resps;
  std::thread sender([&] { resps = alice->SendPipelined(reqs, 64, Millis(20'000)); });
  // Killed once a tenth of them is on disk (the writer's count), whatever the machine's speed.
  const auto give_up = std::chrono::steady_clock::now() + Millis(20'000);
  while (server.LogicMetric(0, "im_logic_write_batch_messages_sum").value_or(0) < 300 &&
         std::chrono::steady_clock::now() < give_up) {
    std::this_thread::sleep_for(Millis(10));
  }
  ASSERT_TRUE(server.Kill());
  sender.join();
  std::map<std::string, uint64_t> acknowledged;
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (IsOk(resps[i])) acknowledged[reqs[i].client_msg_id()] = resps[i]->seq();
  }
  ASSERT_FALSE(acknowledged.empty()) << "nothing was acknowledged before the kill";
  ASSERT_LT(acknowledged.size(), reqs.size()) << "every send finished before the kill";

  ASSERT_TRUE(server.Restart());
  ASSERT_TRUE(bob->Login(server.client_port(0)));
  // Sends in flight at the kill left gaps; no write from before the restart can fill them, so
  // Sync reports them as holes at once rather than waiting out logic.hole_grace_ms (15 s).
  const TestDevice::SyncResult after_kill = bob->SyncAll(conv, 0, 200);
  ASSERT_TRUE(after_kill.ok) << after_kill.error;
  for (const im::v1::SeqRange& hole : after_kill.holes) {
    for (const auto& [client_msg_id, seq] : acknowledged) {
      EXPECT_FALSE(seq >= hole.first() && seq <= hole.last())
          << client_msg_id << " (seq " << seq << ") was acknowledged and is in a hole";
    }
  }
  const std::map<std::string, uint64_t> stored = StoredByClientMsgId(after_kill.messages);
  for (const auto& [client_msg_id, seq] : acknowledged) {
    auto it = stored.find(client_msg_id);
    ASSERT_NE(it, stored.end()) << client_msg_id << " was acknowledged (seq " << seq
                                << ") and is lost";
    EXPECT_EQ(it->second, seq) << client_msg_id;
  }

  // The device sends again what it holds unacknowledged, and (harmlessly) the rest: every message
  // ends up stored once, the acknowledged ones at their seqs.
  ASSERT_TRUE(alice->Login(server.client_port(0)));
  const auto retried = alice->SendPipelined(reqs, 64);
  for (size_t i = 0; i < reqs.size(); ++i) {
    ASSERT_TRUE(IsOk(retried[i])) << reqs[i].client_msg_id();
    auto acked = acknowledged.find(reqs[i].client_msg_id());
    if (acked != acknowledged.end()) {
      EXPECT_EQ(retried[i]->seq(), acked->second) << reqs[i].client_msg_id();
    }
  }
  const TestDevice::SyncResult final_sync = bob->SyncAll(conv, 0, 200);
  ASSERT_TRUE(final_sync.ok) << final_sync.error;
  EXPECT_EQ(StoredByClientMsgId(final_sync.messages).size(), reqs.size());
}

TEST(EmbeddedServerTest, SigtermSendsGoAwayAndExitsCleanly) {
  EmbeddedServer server;
  ASSERT_TRUE(server.Start());
  auto alice = server.Device("alice", "phone");
  ASSERT_TRUE(alice->Login(server.client_port(0)));
  std::thread stopper([&] { EXPECT_TRUE(server.Stop()); });
  EXPECT_TRUE(alice->WaitUntil([&] { return alice->go_aways() > 0; }, Millis(10'000)))
      << "no GoAway before the node stopped";
  stopper.join();
}

TEST(EmbeddedServerTest, ASecondServerOnTheSameDataIsRefused) {
  EmbeddedServer server;
  ASSERT_TRUE(server.Start());
  absl::StatusOr<std::unique_ptr<im::testing::Subprocess>> second =
      im::testing::Subprocess::Start({IM_SERVER_BINARY, "--data", server.data_dir()},
                                     {{"IM_GATEWAY_LISTEN", "127.0.0.1:0"},
                                      {"IM_GATEWAY_METRICS_LISTEN", "127.0.0.1:0"},
                                      {"IM_DEV_MODE", "true"}},
                                     {.stderr_path = server.data_dir() + "/second.log"});
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ((*second)->Wait(Millis(30'000)), 1);
  EXPECT_NE(FileContents(server.data_dir() + "/second.log").find("in use by another im-server"),
            std::string::npos)
      << FileContents(server.data_dir() + "/second.log");
}

TEST(EmbeddedServerTest, ClusterSettingsInItsConfigAreRefused) {
  EmbeddedServer server;  // for its data directory only
  const std::string config = server.data_dir() + "/server.yaml";
  std::ofstream(config) << "dev_mode: true\nredis:\n  address: 127.0.0.1:6379\n";
  absl::StatusOr<std::unique_ptr<im::testing::Subprocess>> process = im::testing::Subprocess::Start(
      {IM_SERVER_BINARY, "--config", config, "--data", server.data_dir()}, {},
      {.stderr_path = server.data_dir() + "/refused.log"});
  ASSERT_TRUE(process.ok()) << process.status();
  EXPECT_EQ((*process)->Wait(Millis(30'000)), 2);
  EXPECT_NE(FileContents(server.data_dir() + "/refused.log").find("redis.address"),
            std::string::npos)
      << FileContents(server.data_dir() + "/refused.log");
}

}  // namespace
}  // namespace im::e2e
