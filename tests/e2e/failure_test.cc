// End-to-end single chat while parts of the cluster fail: a gateway or a logic node killed with
// SIGKILL while two clients chat, and Redis restarted empty under a logic node (DESIGN.md
// section 8, items 1-5).
#include <gtest/gtest.h>

#include <atomic>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

bool IsOk(const std::optional<im::v1::SendResp>& resp) {
  return resp && resp->status().code() == im::v1::OK;
}

std::string Describe(const std::optional<im::v1::SendResp>& resp) {
  return resp ? resp->ShortDebugString() : "no SendResp";
}

// One side of a chat, run on its own thread: sends `count` messages one after the other and,
// like the SDK, retries a send that got no answer with the same client_msg_id after reconnecting
// (to the first of `ports` that takes it) and catching up.
struct Chatter {
  Chatter(TestDevice* d, std::string peer_uid, std::string conv_id, std::vector<uint16_t> try_ports,
          int messages)
      : device(d),
        peer(std::move(peer_uid)),
        conv(std::move(conv_id)),
        ports(std::move(try_ports)),
        count(messages) {}

  TestDevice* device = nullptr;
  std::string peer;
  std::string conv;
  std::vector<uint16_t> ports;
  int count = 0;

  std::atomic<int> acknowledged{0};
  std::atomic<bool> finished{false};
  // Filled by the thread; read after join.
  std::map<std::string, im::v1::SendResp> ok_by_cmid;
  int failed_attempts = 0;
  int reconnects = 0;
  std::string failure;

  void Run() {
    SendAll();
    finished.store(true);
  }

  void SendAll() {
    for (int i = 0; i < count; ++i) {
      const std::string cmid = absl::StrCat("m-", i);
      const auto deadline = std::chrono::steady_clock::now() + Millis(40'000);
      while (true) {
        if (std::chrono::steady_clock::now() > deadline) {
          failure = absl::StrCat(cmid, " was not acknowledged within 40 s");
          return;
        }
        if (!device->connected()) {
          if (!device->LoginAny(ports, Millis(20'000))) {
            failure = absl::StrCat(device->uid(), " could not log in again");
            return;
          }
          reconnects++;
          const TestDevice::SyncResult caught_up = device->CatchUp(conv, 100);
          if (!caught_up.ok) failed_attempts++;  // tried again at the next reconnect or the end
        }
        std::optional<im::v1::SendResp> resp =
            device->SendTo(peer, cmid, absl::StrCat(device->uid(), " #", i), Millis(10'000));
        if (IsOk(resp)) {
          ok_by_cmid[cmid] = *resp;
          break;
        }
        failed_attempts++;
        if (!resp) {
          device->Disconnect();  // no answer: the connection is gone or stuck; start over
        } else {
          std::this_thread::sleep_for(Millis(100));  // an error status: back off, retry
        }
      }
      acknowledged.fetch_add(1);
      device->Poll(Millis(0));
    }
  }
};

// After two Chatters of one conversation finished: every acknowledged message has its own seq,
// each device holds every one of them once and in order (a last catch-up fetches pushes lost
// with a dead process), and storage holds each exactly once. A reader logs in on `reader_port`.
void ExpectEveryAcknowledgedMessageHeldAndStoredOnce(Chatter& alice, Chatter& bob, int per_side,
                                                     uint16_t reader_port) {
  TestDevice* const alice_phone = alice.device;
  TestDevice* const bob_phone = bob.device;
  const std::string& conv = alice.conv;
  const int kPerSide = per_side;
  const uint16_t port1 = reader_port;
  // Every acknowledged message, by seq; no seq acknowledged for two different messages.
  std::map<uint64_t, std::pair<std::string, im::v1::SendResp>> acked;  // seq -> (sender, resp)
  for (Chatter* side : {&alice, &bob}) {
    ASSERT_EQ(side->ok_by_cmid.size(), static_cast<size_t>(kPerSide));
    for (const auto& [cmid, resp] : side->ok_by_cmid) {
      EXPECT_EQ(resp.conv_id(), conv);
      auto [it, inserted] = acked.emplace(resp.seq(), std::make_pair(side->device->uid(), resp));
      EXPECT_TRUE(inserted) << "seq " << resp.seq() << " acknowledged for " << side->device->uid()
                            << "/" << cmid << " and " << it->second.first << "/"
                            << it->second.second.client_msg_id();
    }
  }
  std::vector<uint64_t> acked_seqs;
  for (const auto& [seq, sender_resp] : acked) acked_seqs.push_back(seq);

  // Each device ends up holding every acknowledged message, once, in order: by push while
  // connected, by sync after reconnecting, and one last catch-up for pushes still in flight.
  for (TestDevice* device : {alice_phone, bob_phone}) {
    SCOPED_TRACE(device->uid());
    auto holds_all = [&] {
      const std::vector<im::v1::Message> held = device->Held(conv);
      return held.size() >= acked_seqs.size();
    };
    if (!device->WaitUntil(holds_all, Millis(5'000))) {
      // Polling: a seq a dead node took and never stored is held back as a possible write in
      // flight for the hole grace period, then reported as a hole.
      TestDevice::SyncResult caught_up;
      device->WaitUntil([&] { return (caught_up = device->CatchUp(conv, 100)).ok; },
                        Millis(15'000));
      EXPECT_TRUE(caught_up.ok) << caught_up.error;
    }
    const std::vector<im::v1::Message> held = device->Held(conv);
    EXPECT_TRUE(SeqsAre(held, acked_seqs));
    for (const im::v1::Message& m : held) {
      auto it = acked.find(m.seq());
      if (it == acked.end()) continue;
      EXPECT_EQ(m.msg_id(), it->second.second.msg_id()) << "seq " << m.seq();
      EXPECT_EQ(m.sender(), it->second.first) << "seq " << m.seq();
      EXPECT_EQ(m.client_msg_id(), it->second.second.client_msg_id()) << "seq " << m.seq();
    }
    // A message may be pushed again (a retry after the node died pushes it again); never a
    // different message under a seq.
    EXPECT_TRUE(device->conflicts().empty()) << device->conflicts().front();
  }

  // What is stored: each acknowledged message once (a retried send was not stored twice).
  TestDevice reader(bob_phone->uid(), "tablet", LocalCluster::Token(bob_phone->uid()));
  ASSERT_TRUE(reader.Login(port1));
  TestDevice::SyncResult stored;
  reader.WaitUntil([&] { return (stored = reader.SyncAll(conv, 0, 100)).ok; }, Millis(15'000));
  ASSERT_TRUE(stored.ok) << stored.error;
  EXPECT_TRUE(EachSeqOnceInOrder(stored.messages));
  EXPECT_TRUE(SeqsAre(stored.messages, acked_seqs));
  std::set<std::pair<std::string, std::string>> sender_cmids;
  for (const im::v1::Message& m : stored.messages) {
    EXPECT_TRUE(sender_cmids.emplace(m.sender(), m.client_msg_id()).second)
        << m.sender() << "/" << m.client_msg_id() << " stored twice";
  }
  if (!acked_seqs.empty() && acked_seqs.back() != acked_seqs.size()) {
    std::printf("note: %zu messages over seqs 1..%llu (holes: %d ranges reported)\n",
                acked_seqs.size(), static_cast<unsigned long long>(acked_seqs.back()),
                static_cast<int>(stored.holes.size()));
  }
}

// Alice (on gateway 0) and bob (on gateway 1) each send kPerSide messages to the other; `fault`
// strikes once alice has a quarter of hers acknowledged. Then the usual checks: every message
// acknowledged is held by both devices once, in order, and stored once.
struct FaultedChat {
  static constexpr int kPerSide = 120;
  std::unique_ptr<TestDevice> alice_phone;
  std::unique_ptr<TestDevice> bob_phone;
  std::unique_ptr<Chatter> alice;
  std::unique_ptr<Chatter> bob;
  int acknowledged_at_fault = 0;

  void Run(LocalCluster& cluster, const std::function<void()>& fault) {
    alice_phone = cluster.Device("alice", "phone");
    bob_phone = cluster.Device("bob", "phone");
    const uint16_t port0 = cluster.client_port(0);
    const uint16_t port1 = cluster.client_port(1);
    ASSERT_TRUE(alice_phone->Login(port0));
    ASSERT_TRUE(bob_phone->Login(port1));
    const std::string conv = SingleConvId(alice_phone->uid(), bob_phone->uid());
    alice = std::make_unique<Chatter>(alice_phone.get(), bob_phone->uid(), conv,
                                      std::vector<uint16_t>{port0, port1}, kPerSide);
    bob = std::make_unique<Chatter>(bob_phone.get(), alice_phone->uid(), conv,
                                    std::vector<uint16_t>{port1, port0}, kPerSide);
    std::thread alice_thread([&] { alice->Run(); });
    std::thread bob_thread([&] { bob->Run(); });
    const auto deadline = std::chrono::steady_clock::now() + Millis(60'000);
    while (alice->acknowledged.load() < kPerSide / 4 && !alice->finished.load() &&
           std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(Millis(5));
    }
    acknowledged_at_fault = alice->acknowledged.load();
    fault();
    alice_thread.join();
    bob_thread.join();
    ASSERT_TRUE(alice->failure.empty()) << alice->failure;
    ASSERT_TRUE(bob->failure.empty()) << bob->failure;
    EXPECT_GE(acknowledged_at_fault, kPerSide / 4);
    EXPECT_LT(acknowledged_at_fault, kPerSide) << "the fault struck after the chat was over";
    std::printf(
        "alice: %d failed attempts, %d reconnects; bob: %d failed attempts, %d reconnects\n",
        alice->failed_attempts, alice->reconnects, bob->failed_attempts, bob->reconnects);
    ExpectEveryAcknowledgedMessageHeldAndStoredOnce(*alice, *bob, kPerSide, port1);
  }
};

TEST(FailureTest, GatewayKilledWhileTwoClientsChat) {
  LocalCluster cluster;
  ASSERT_TRUE(cluster.Start());
  FaultedChat chat;
  chat.Run(cluster, [&] { EXPECT_TRUE(cluster.KillGateway(0)); });
  EXPECT_GE(chat.alice->reconnects, 1) << "alice never noticed her gateway die";
  EXPECT_EQ(chat.bob->reconnects, 0);
}

// A logic node dies while both sides send: the gateways' streams to it break with requests in
// them. The sends are resent on a stream to the other node (a send is idempotent by
// client_msg_id): no client has to reconnect, and every message acknowledged is stored once and
// reaches both devices. A send the dead node had claimed but not stored is refused (or times
// out) on the other node until the claim expires, so a client may retry one: counted, not an
// error.
TEST(FailureTest, LogicNodeKilledWhileTwoClientsChat) {
  ClusterOptions options;
  options.logic_nodes = 2;
  // A seq the dead node took without storing its message becomes a hole: short write deadlines
  // and grace period (as in the Redis test below) let the claim expire and Sync report it soon.
  options.logic_env = {{"IM_LOGIC_WRITE_DEADLINE_MS", "1000"},
                       {"IM_MYSQL_TIMEOUT_MS", "1000"},
                       {"IM_LOGIC_HOLE_GRACE_MS", "2500"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  FaultedChat chat;
  chat.Run(cluster, [&] {
    // The node that read the most requests holds the stream of alice's or bob's gateway loop.
    const double read0 = cluster.LogicMetric(0, "im_logic_ingress_entries_total").value_or(0);
    const double read1 = cluster.LogicMetric(1, "im_logic_ingress_entries_total").value_or(0);
    EXPECT_GT(std::max(read0, read1), 0);
    EXPECT_TRUE(cluster.KillLogic(read0 >= read1 ? 0 : 1));
  });
  EXPECT_EQ(chat.alice->reconnects, 0);
  EXPECT_EQ(chat.bob->reconnects, 0);
}

TEST(FailureTest, RedisRestartedEmptyNeverReusesASeqNorLiesAboutASend) {
  OwnRedis redis;
  ASSERT_TRUE(redis.Start());
  ClusterOptions options;
  options.gateways = 1;
  options.redis_address = redis.address();
  // Short timeouts so that sends fail fast while Redis is down, and a short hole grace period
  // (it must exceed the write deadline plus the MySQL timeout) so that Sync reports holes soon.
  options.logic_env = {{"IM_REDIS_TIMEOUT_MS", "500"},
                       {"IM_LOGIC_WRITE_DEADLINE_MS", "1000"},
                       {"IM_MYSQL_TIMEOUT_MS", "1000"},
                       {"IM_LOGIC_HOLE_GRACE_MS", "2500"}};
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  const uint16_t port = cluster.client_port(0);
  auto alice_phone = cluster.Device("alice", "phone");
  auto bob_phone = cluster.Device("bob", "phone");
  ASSERT_TRUE(alice_phone->Login(port));
  ASSERT_TRUE(bob_phone->Login(port));
  const std::string bob = bob_phone->uid();
  const std::string conv = SingleConvId(alice_phone->uid(), bob);

  struct Attempt {
    std::string cmid;
    std::optional<im::v1::SendResp> resp;
  };
  std::vector<Attempt> attempts;  // in the order sent
  auto send = [&](const std::string& cmid) {
    if (!alice_phone->connected()) alice_phone->LoginAny({port}, Millis(20'000));
    attempts.push_back({cmid, alice_phone->SendTo(bob, cmid, "body of " + cmid, Millis(10'000))});
    if (!attempts.back().resp) alice_phone->Disconnect();
    return attempts.back().resp;
  };

  constexpr int kBefore = 10;
  for (int i = 0; i < kBefore; ++i) {
    const std::optional<im::v1::SendResp> resp = send(absl::StrCat("before-", i));
    ASSERT_TRUE(IsOk(resp)) << Describe(resp);
  }

  ASSERT_TRUE(redis.Kill());
  // While Redis is down a send may fail; it must not be acknowledged unless it was stored.
  int failed_while_down = 0;
  for (int i = 0; i < 3; ++i) {
    if (!IsOk(send(absl::StrCat("down-", i)))) failed_while_down++;
  }
  std::printf("while Redis was down: %d of 3 sends failed\n", failed_while_down);

  ASSERT_TRUE(redis.Start());  // the same port, no data
  constexpr int kAfter = 20;
  for (int i = 0; i < kAfter; ++i) {
    const std::string cmid = absl::StrCat("after-", i);
    const auto deadline = std::chrono::steady_clock::now() + Millis(30'000);
    while (!IsOk(send(cmid)) && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(Millis(200));
    }
    ASSERT_TRUE(IsOk(attempts.back().resp))
        << cmid << " still failing 30 s after Redis came back: " << Describe(attempts.back().resp);
  }

  // Every acknowledged send has its own seq, increasing in the order they were sent.
  std::map<std::string, im::v1::SendResp> acked;  // cmid -> resp
  std::set<std::string> unacknowledged;
  uint64_t last_seq = 0;
  for (const Attempt& attempt : attempts) {
    if (!IsOk(attempt.resp)) {
      if (acked.count(attempt.cmid) == 0) unacknowledged.insert(attempt.cmid);
      continue;
    }
    unacknowledged.erase(attempt.cmid);
    auto [it, inserted] = acked.emplace(attempt.cmid, *attempt.resp);
    if (!inserted) {
      EXPECT_EQ(attempt.resp->seq(), it->second.seq()) << attempt.cmid << " acknowledged twice";
      continue;
    }
    EXPECT_GT(attempt.resp->seq(), last_seq)
        << attempt.cmid << " got seq " << attempt.resp->seq() << " after seq " << last_seq
        << " was handed out: a seq was reused after Redis lost its counters";
    last_seq = std::max(last_seq, attempt.resp->seq());
  }

  // Sync returns every acknowledged message (polling: a hole may be held back for the grace
  // period before it is reported).
  TestDevice::SyncResult synced;
  auto has_all = [&] {
    if (!bob_phone->connected()) bob_phone->LoginAny({port}, Millis(5'000));
    synced = bob_phone->SyncAll(conv, 0, 50);
    if (!synced.ok) return false;
    std::set<std::string> cmids;
    for (const im::v1::Message& m : synced.messages) cmids.insert(m.client_msg_id());
    for (const auto& [cmid, resp] : acked) {
      if (cmids.count(cmid) == 0) return false;
    }
    return true;
  };
  const bool complete = bob_phone->WaitUntil(has_all, Millis(30'000));
  ASSERT_TRUE(synced.ok) << synced.error;
  EXPECT_TRUE(complete) << "Sync is missing acknowledged messages; it returned seqs "
                        << SeqList(SeqsOf(synced.messages));
  EXPECT_TRUE(EachSeqOnceInOrder(synced.messages));
  std::set<uint64_t> message_seqs;
  for (const im::v1::Message& m : synced.messages) {
    message_seqs.insert(m.seq());
    auto it = acked.find(m.client_msg_id());
    if (it != acked.end()) {
      EXPECT_EQ(m.seq(), it->second.seq()) << m.client_msg_id();
      EXPECT_EQ(m.msg_id(), it->second.msg_id()) << m.client_msg_id();
    } else {
      // Stored without an OK: only a send that got an error or no answer may be.
      EXPECT_EQ(unacknowledged.count(m.client_msg_id()), 1u)
          << "Sync returned a message nobody sent: " << m.ShortDebugString();
    }
  }
  for (const im::v1::SeqRange& hole : synced.holes) {
    EXPECT_LE(hole.first(), hole.last());
    for (uint64_t seq : message_seqs) {
      EXPECT_FALSE(hole.first() <= seq && seq <= hole.last())
          << "hole " << hole.ShortDebugString() << " covers stored seq " << seq;
    }
  }
  // No gap left unexplained: a client never waits for a seq that will never come.
  std::set<uint64_t> in_holes;
  for (const im::v1::SeqRange& hole : synced.holes) {
    for (uint64_t seq = hole.first(); seq <= hole.last() && seq <= synced.max_seq; ++seq) {
      in_holes.insert(seq);
    }
  }
  std::vector<uint64_t> unexplained;
  for (uint64_t seq = 1; seq <= synced.max_seq; ++seq) {
    if (message_seqs.count(seq) == 0 && in_holes.count(seq) == 0) unexplained.push_back(seq);
  }
  EXPECT_TRUE(unexplained.empty())
      << "seqs neither returned nor reported as holes: " << SeqList(unexplained);
  std::printf("after the Redis loss: seqs %s; holes reported: %d ranges\n",
              SeqList(SeqsOf(synced.messages)).c_str(), static_cast<int>(synced.holes.size()));
  for (const im::v1::SeqRange& hole : synced.holes) {
    std::printf("  hole %llu..%llu\n", static_cast<unsigned long long>(hole.first()),
                static_cast<unsigned long long>(hole.last()));
  }
  EXPECT_EQ(synced.max_seq, last_seq);
}

}  // namespace
}  // namespace im::e2e
