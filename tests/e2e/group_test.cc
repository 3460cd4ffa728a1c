// End-to-end group chat on the real binaries, the cluster's (im-logic, im-gateway against the real
// Redis, MariaDB and Kafka) and the embedded node's (im-server on SQLite): fan-out of a 300-member
// group, join and leave boundaries, non-members, the member cap, member paging and roles on both;
// on the cluster only, a logic node killed and the Kafka broker stopped, paused or its consumer
// group rebalanced under a send stream (DESIGN.md sections 5, 6 and 8).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "logic/group/kafka_admin.h"
#include "tests/e2e/chat_deployment.h"
#include "tests/e2e/consumer_group_churn.h"
#include "tests/e2e/local_cluster.h"
#include "tests/e2e/test_device.h"

namespace im::e2e {
namespace {

using Clock = std::chrono::steady_clock;

constexpr Millis kPushTimeout{15'000};
// How long a test lets a message that must NOT come have to show up anyway.
constexpr Millis kQuietPeriod{1'000};
// Fan-out that survives a failure may wait for a consumer-group rebalance (the dead consumer's
// session timeout) or a fallback path.
constexpr Millis kRecoveryTimeout{120'000};

template <typename Resp>
im::v1::Code CodeOf(const std::optional<Resp>& resp) {
  return resp ? resp->status().code() : im::v1::UNKNOWN;
}

template <typename Resp>
bool IsOk(const std::optional<Resp>& resp) {
  return resp && resp->status().code() == im::v1::OK;
}

template <typename Resp>
std::string Describe(const std::optional<Resp>& resp) {
  return resp ? resp->ShortDebugString() : "no response";
}

double SecondsSince(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

ClusterOptions GroupClusterOptions() {
  ClusterOptions options;
  // Test devices send no Ping: keep the gateways from closing quiet ones as idle (three silent
  // heartbeats) during the long scenarios.
  options.gateway_env = {{"IM_GATEWAY_HEARTBEAT_SEC", "600"}};
  return options;
}

// Creates a group owned by `owner` with `members`: its id, or "" after a failed expectation.
std::string CreateGroup(TestDevice& owner, const std::vector<std::string>& members) {
  const std::optional<im::v1::GroupCreateResp> resp = owner.GroupCreate("e2e group", members);
  EXPECT_EQ(CodeOf(resp), im::v1::OK) << "GroupCreate: " << Describe(resp);
  if (!IsOk(resp)) return "";
  EXPECT_FALSE(resp->group_id().empty());
  EXPECT_EQ(resp->conv_id(), GroupConvId(resp->group_id()));
  return resp->group_id();
}

// Sends `count` messages to `conv` one after the other; their seqs, or fewer after a failed
// expectation.
std::vector<uint64_t> SendSome(TestDevice& device, const std::string& conv, const std::string& tag,
                               int count) {
  std::vector<uint64_t> seqs;
  for (int i = 0; i < count; ++i) {
    const std::optional<im::v1::SendResp> resp =
        device.SendToConv(conv, absl::StrCat(tag, "-", i), absl::StrCat(tag, " #", i));
    EXPECT_TRUE(IsOk(resp)) << device.uid() << " " << tag << "-" << i << ": " << Describe(resp);
    if (!IsOk(resp)) break;
    EXPECT_EQ(resp->conv_id(), conv);
    seqs.push_back(resp->seq());
  }
  return seqs;
}

std::vector<uint64_t> Concat(std::initializer_list<std::vector<uint64_t>> parts) {
  std::vector<uint64_t> all;
  for (const std::vector<uint64_t>& part : parts) all.insert(all.end(), part.begin(), part.end());
  return all;
}

std::set<uint64_t> SetOf(const std::vector<uint64_t>& seqs) { return {seqs.begin(), seqs.end()}; }

// Polls every device in turn until `done()` holds or `timeout` passes; returns done().
bool PollAllUntil(const std::vector<TestDevice*>& devices, const std::function<bool()>& done,
                  Millis timeout) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    for (TestDevice* device : devices) device->Poll(Millis(0));
  }
  return true;
}

void PollAllFor(const std::vector<TestDevice*>& devices, Millis period) {
  PollAllUntil(
      devices, [] { return false; }, period);
}

// uid -> member of a GroupMembers listing; expects each uid once.
std::map<std::string, im::v1::GroupMember> ByUid(const std::vector<im::v1::GroupMember>& members) {
  std::map<std::string, im::v1::GroupMember> by_uid;
  for (const im::v1::GroupMember& m : members) {
    EXPECT_TRUE(by_uid.emplace(m.uid(), m).second) << m.uid() << " listed twice";
  }
  return by_uid;
}

std::set<std::string> UidsOf(const std::vector<im::v1::GroupMember>& members) {
  std::set<std::string> uids;
  for (const im::v1::GroupMember& m : members) uids.insert(m.uid());
  return uids;
}

// One member sending `count` messages to a group on its own thread, at most `window` of them
// unanswered at a time (the gateway allows 64 per connection), `chunk` per pipelined batch. An
// overload refusal (RESOURCE_EXHAUSTED with retry_after_ms: a node shed the send, stored nothing)
// is always sent again with the same client_msg_id after the wait it asks for, as the SDK does.
// With `retry`, so is a send that failed otherwise or got no answer (after logging in again
// through the first of `ports` that takes it when the connection is gone), until it is
// acknowledged; without, the first other failure ends the run.
struct GroupSender {
  TestDevice* device = nullptr;
  std::string conv;
  std::vector<uint16_t> ports;
  int count = 0;
  size_t window = 32;
  size_t chunk = 100;
  bool retry = false;
  Millis pause{0};  // after each batch
  Millis give_up{240'000};

  std::atomic<int> acknowledged{0};
  std::atomic<bool> finished{false};
  // Set by another thread: start no new message; those already tried are still retried.
  std::atomic<bool> stop_new{false};
  // Set by another thread: return as soon as possible (the test is failing already).
  std::atomic<bool> abandon{false};

  // Filled by the thread; read after join.
  std::map<std::string, im::v1::SendResp> ok_by_cmid;
  std::map<std::string, std::string> body_by_cmid;  // every message tried
  std::map<im::v1::Code, int> failed_attempts;      // by status; UNKNOWN also for no answer
  int unanswered = 0;
  int overload_refusals = 0;
  int reconnects = 0;
  std::string failure;

  void Run() {
    SendAll();
    finished.store(true);
  }

  int failed_attempt_count() const {
    int total = 0;
    for (const auto& [code, n] : failed_attempts) total += n;
    return total;
  }

  std::string FailureSummary() const {
    std::string text;
    for (const auto& [code, n] : failed_attempts) {
      absl::StrAppend(&text, text.empty() ? "" : ", ", im::v1::Code_Name(code), " x", n);
    }
    return text.empty() ? "none" : text;
  }

 private:
  static bool IsOverloadRefusal(const std::optional<im::v1::SendResp>& resp) {
    return resp && resp->status().code() == im::v1::RESOURCE_EXHAUSTED &&
           resp->status().retry_after_ms() > 0;
  }

  void SendAll() {
    const auto deadline = Clock::now() + give_up;
    std::vector<int> todo;
    int next = 0;
    while (true) {
      while (todo.size() < chunk && next < count && !stop_new.load()) todo.push_back(next++);
      if (todo.empty() || abandon.load()) return;
      if (Clock::now() > deadline) {
        failure = absl::StrCat(device->uid(), ": ", todo.size(), " sends unacknowledged after ",
                               give_up.count(), " ms");
        return;
      }
      if (!device->connected()) {
        if (!device->LoginAny(ports, Millis(20'000))) {
          failure = absl::StrCat(device->uid(), " could not log in again");
          return;
        }
        reconnects++;
      }
      std::vector<im::v1::SendReq> reqs;
      for (int i : todo) {
        im::v1::SendReq req;
        req.set_conv_id(conv);
        req.set_client_msg_id(absl::StrCat("g-", i));
        req.set_type(im::v1::TEXT);
        req.set_body(absl::StrCat(device->uid(), " #", i));
        body_by_cmid[req.client_msg_id()] = req.body();
        reqs.push_back(std::move(req));
      }
      const std::vector<std::optional<im::v1::SendResp>> resps =
          device->SendPipelined(reqs, window, Millis(30'000));
      std::vector<int> again;
      bool lost_answer = false;
      Millis backoff(200);  // after an error status
      for (size_t k = 0; k < reqs.size(); ++k) {
        if (IsOk(resps[k])) {
          ok_by_cmid[reqs[k].client_msg_id()] = *resps[k];
          acknowledged.fetch_add(1);
          continue;
        }
        failed_attempts[CodeOf(resps[k])]++;
        if (!resps[k]) {
          unanswered++;
          lost_answer = true;
        }
        if (IsOverloadRefusal(resps[k])) {
          overload_refusals++;
          backoff = std::max(backoff, Millis(resps[k]->status().retry_after_ms()));
          again.push_back(todo[k]);
          continue;
        }
        if (!retry) {
          failure =
              absl::StrCat(device->uid(), " ", reqs[k].client_msg_id(), ": ", Describe(resps[k]));
          return;
        }
        again.push_back(todo[k]);
      }
      todo = std::move(again);
      if (lost_answer) {
        device->Disconnect();  // no answer: the connection is gone or stuck; start over
      } else if (!todo.empty()) {
        std::this_thread::sleep_for(backoff);  // an error status: back off, then retry
      }
      if (pause.count() > 0) std::this_thread::sleep_for(pause);
    }
  }
};

// Senders on their threads; the destructor makes them give up and joins them, so that a failed
// ASSERT in the test body never leaves a joinable thread behind.
class SenderRun {
 public:
  ~SenderRun() {
    for (auto& sender : senders_) sender->abandon.store(true);
    Join();
  }
  GroupSender& Add() {
    senders_.push_back(std::make_unique<GroupSender>());
    return *senders_.back();
  }
  void Start() {
    for (auto& sender : senders_) threads_.emplace_back([s = sender.get()] { s->Run(); });
  }
  void StopNew() {
    for (auto& sender : senders_) sender->stop_new.store(true);
  }
  void Join() {
    for (std::thread& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  bool finished() const {
    for (const auto& sender : senders_) {
      if (!sender->finished.load()) return false;
    }
    return true;
  }
  int acknowledged() const {
    int total = 0;
    for (const auto& sender : senders_) total += sender->acknowledged.load();
    return total;
  }
  const std::vector<std::unique_ptr<GroupSender>>& senders() const { return senders_; }

 private:
  std::vector<std::unique_ptr<GroupSender>> senders_;
  std::vector<std::thread> threads_;
};

// What the senders of a test were acknowledged, by seq.
struct Acked {
  struct Entry {
    std::string sender;
    std::string body;
    im::v1::SendResp resp;
  };
  std::map<uint64_t, Entry> by_seq;
  std::vector<uint64_t> seqs;  // ascending

  // Every acknowledged seq not sent by `uid`.
  std::set<uint64_t> NotFrom(const std::string& uid) const {
    std::set<uint64_t> out;
    for (const auto& [seq, entry] : by_seq) {
      if (entry.sender != uid) out.insert(seq);
    }
    return out;
  }
};

// Expects no seq acknowledged for two different messages.
Acked CollectAcked(const SenderRun& run, const std::string& conv) {
  Acked acked;
  for (const auto& sender : run.senders()) {
    for (const auto& [cmid, resp] : sender->ok_by_cmid) {
      EXPECT_EQ(resp.conv_id(), conv);
      EXPECT_EQ(resp.client_msg_id(), cmid);
      const Acked::Entry entry{sender->device->uid(), sender->body_by_cmid.at(cmid), resp};
      auto [it, inserted] = acked.by_seq.emplace(resp.seq(), entry);
      EXPECT_TRUE(inserted) << "seq " << resp.seq() << " acknowledged for " << entry.sender << "/"
                            << cmid << " and " << it->second.sender << "/"
                            << it->second.resp.client_msg_id();
    }
  }
  for (const auto& [seq, entry] : acked.by_seq) acked.seqs.push_back(seq);
  return acked;
}

// Each message that is an acknowledged send carries what was sent.
void ExpectMatchesAcked(const std::vector<im::v1::Message>& messages, const Acked& acked,
                        const std::string& conv, const std::string& who) {
  int mismatches = 0;
  for (const im::v1::Message& m : messages) {
    auto it = acked.by_seq.find(m.seq());
    if (it == acked.by_seq.end()) continue;
    const Acked::Entry& e = it->second;
    const bool same = m.conv_id() == conv && m.msg_id() == e.resp.msg_id() &&
                      m.sender() == e.sender && m.client_msg_id() == e.resp.client_msg_id() &&
                      m.body() == e.body && m.type() == im::v1::TEXT;
    if (!same && ++mismatches <= 5) {
      ADD_FAILURE() << who << ": seq " << m.seq() << " is " << m.ShortDebugString()
                    << "; acknowledged to " << e.sender << " as " << e.resp.ShortDebugString()
                    << " with body '" << e.body << "'";
    }
  }
  EXPECT_EQ(mismatches, 0) << who << ": messages that differ from what was acknowledged";
}

std::string Who(const TestDevice& device) { return device.uid() + "/" + device.device(); }

// The whole stored conversation as `reader` syncs it, polling until it holds every acknowledged
// message (a hole may be held back for logic's grace period before Sync reports it). Expects the
// stored messages to be exactly the acknowledged ones, each once, and every other seq up to
// max_seq to be reported as a hole.
TestDevice::SyncResult ExpectStoredExactlyAcked(TestDevice& reader, const std::string& conv,
                                                const Acked& acked) {
  TestDevice::SyncResult synced;
  const std::set<uint64_t> want(acked.seqs.begin(), acked.seqs.end());
  reader.WaitUntil(
      [&] {
        synced = reader.SyncAll(conv, 0, 200);
        if (!synced.ok) return false;
        size_t found = 0;
        for (const im::v1::Message& m : synced.messages) found += want.count(m.seq());
        return found == want.size();
      },
      Millis(40'000));
  EXPECT_TRUE(synced.ok) << synced.error;
  EXPECT_TRUE(EachSeqOnceInOrder(synced.messages));
  EXPECT_TRUE(SeqsAre(synced.messages, acked.seqs)) << "stored messages of " << conv;
  ExpectMatchesAcked(synced.messages, acked, conv, "Sync by " + Who(reader));
  std::set<std::pair<std::string, std::string>> sender_cmids;
  for (const im::v1::Message& m : synced.messages) {
    EXPECT_TRUE(sender_cmids.emplace(m.sender(), m.client_msg_id()).second)
        << m.sender() << "/" << m.client_msg_id() << " stored twice";
  }
  std::set<uint64_t> explained(want);
  for (const im::v1::Message& m : synced.messages) {
    if (IsSystemNotice(m)) explained.insert(m.seq());
  }
  for (const im::v1::SeqRange& hole : synced.holes) {
    for (uint64_t seq = hole.first(); seq <= hole.last() && seq <= synced.max_seq; ++seq) {
      EXPECT_EQ(want.count(seq), 0u) << "hole " << hole.ShortDebugString() << " covers seq " << seq;
      explained.insert(seq);
    }
  }
  std::vector<uint64_t> unexplained;
  for (uint64_t seq = 1; seq <= synced.max_seq; ++seq) {
    if (explained.count(seq) == 0) unexplained.push_back(seq);
  }
  EXPECT_TRUE(unexplained.empty())
      << "seqs neither stored nor reported as holes: " << SeqList(unexplained);
  if (!acked.seqs.empty()) {
    EXPECT_EQ(synced.max_seq, acked.seqs.back());
  }
  return synced;
}

// Waits up to `timeout` until every online member was pushed every acknowledged message of the
// others, then a quiet period for late duplicates. Expects nothing missing or unexpected, every
// pushed message as acknowledged, and no duplicate unless `duplicates_allowed` (a real failure,
// after which devices drop them). Returns the duplicate pushes.
size_t ExpectEachPushed(const std::vector<TestDevice*>& online, const std::string& conv,
                        const Acked& acked, Millis timeout, bool duplicates_allowed) {
  std::map<TestDevice*, std::set<uint64_t>> expected;
  for (TestDevice* device : online) expected[device] = acked.NotFrom(device->uid());
  const bool complete = PollAllUntil(
      online,
      [&] {
        for (TestDevice* device : online) {
          if (!TallyPushes(device->Pushed(conv), expected[device]).missing.empty()) return false;
        }
        return true;
      },
      timeout);
  PollAllFor(online, kQuietPeriod);
  EXPECT_TRUE(complete) << "acknowledged messages still missing after " << timeout.count() << " ms";
  size_t duplicates = 0;
  for (TestDevice* device : online) {
    SCOPED_TRACE(Who(*device));
    const PushTally tally = TallyPushes(device->Pushed(conv), expected[device]);
    duplicates += tally.duplicates;
    if (!duplicates_allowed) {
      EXPECT_EQ(tally.duplicates, 0u) << tally.ToString();
    }
    EXPECT_TRUE(tally.missing.empty()) << tally.ToString();
    EXPECT_TRUE(tally.unexpected.empty()) << tally.ToString();
    ExpectMatchesAcked(MessagesOf(device->Pushed(conv)), acked, conv, Who(*device));
    EXPECT_TRUE(device->conflicts().empty()) << device->conflicts().front();
  }
  return duplicates;
}

// Runs on the cluster (two gateways) and on the embedded node (one im-server): GroupTest.X/Cluster
// and GroupTest.X/Embedded. The tests of the cluster's own machinery (killed logic nodes, a Kafka
// broker of their own, consumer-group churn) are GroupClusterTest.X.
class GroupTest : public DeploymentTest {};
IM_INSTANTIATE_DEPLOYMENTS(GroupTest);

// a. Fan-out at size: 300 members over two gateways, 60 online, five of them sending 200
// messages each at once, pipelined. Every online member is pushed every message of the others
// exactly once and holds the whole conversation in seq order; offline members find it all by
// Conversations and paged Sync.
TEST_P(GroupTest, ThreeHundredMembersFiveSendersEveryMemberGetsAllThousandOnce) {
  auto cluster = Deploy(GroupClusterOptions());
  ASSERT_TRUE(cluster->Start());
  constexpr int kMembers = 300;
  constexpr int kOnline = 60;
  constexpr int kPerSender = 200;
  constexpr int kSenderIndex[] = {0, 13, 26, 39, 52};  // on both gateways
  constexpr int kTotal = kPerSender * static_cast<int>(std::size(kSenderIndex));
  const uint16_t ports[] = {cluster->client_port(0), cluster->client_port(1)};

  std::vector<std::unique_ptr<TestDevice>> devices;
  std::vector<std::string> uids;
  for (int i = 0; i < kMembers; ++i) {
    devices.push_back(cluster->Device(absl::StrFormat("m%03d", i), "phone"));
    uids.push_back(devices.back()->uid());
  }
  std::vector<TestDevice*> online;
  for (int i = 0; i < kOnline; ++i) {
    ASSERT_TRUE(devices[i]->Login(ports[i % 2]));
    online.push_back(devices[i].get());
  }
  TestDevice& owner = *devices[0];
  const std::string group = CreateGroup(owner, {uids.begin() + 1, uids.end()});
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);
  const TestDevice::GroupMembersResult listed = owner.ListGroupMembers(group, 100);
  ASSERT_TRUE(listed.ok) << listed.error;
  ASSERT_EQ(UidsOf(listed.members), std::set<std::string>(uids.begin(), uids.end()));

  SenderRun run;
  std::set<TestDevice*> sending;
  for (int index : kSenderIndex) {
    GroupSender& sender = run.Add();
    sender.device = devices[index].get();
    sender.conv = conv;
    sender.count = kPerSender;
    sender.window = 32;
    sender.chunk = kPerSender;  // all at once, at most `window` unanswered
    sending.insert(sender.device);
  }
  std::vector<TestDevice*> receivers;
  for (TestDevice* device : online) {
    if (sending.count(device) == 0) receivers.push_back(device);
  }
  const auto send_start = Clock::now();
  run.Start();
  PollAllUntil(
      receivers, [&] { return run.finished(); }, Millis(300'000));
  run.Join();
  const double send_seconds = SecondsSince(send_start);
  int overload_refusals = 0;  // retried after the wait they asked for
  for (const auto& sender : run.senders()) {
    ASSERT_TRUE(sender->failure.empty()) << sender->failure;
    ASSERT_EQ(sender->ok_by_cmid.size(), static_cast<size_t>(kPerSender));
    overload_refusals += sender->overload_refusals;
  }
  const Acked acked = CollectAcked(run, conv);
  ASSERT_EQ(acked.seqs.size(), static_cast<size_t>(kTotal));
  EXPECT_EQ(acked.seqs.back() - acked.seqs.front() + 1, static_cast<uint64_t>(kTotal))
      << "the acknowledged seqs are not dense: " << SeqList(acked.seqs);

  // Every online member, the senders too, is pushed every message it did not send itself.
  std::map<TestDevice*, std::set<uint64_t>> expected;
  for (TestDevice* device : online) expected[device] = acked.NotFrom(device->uid());
  const bool complete = PollAllUntil(
      online,
      [&] {
        for (TestDevice* device : online) {
          if (device->PushedSeqCount(conv) < expected[device].size()) return false;
        }
        return true;
      },
      Millis(120'000));
  const double deliver_seconds = SecondsSince(send_start);
  PollAllFor(online, kQuietPeriod);  // a late duplicate or an echo shows up too
  EXPECT_TRUE(complete) << "not every online member was pushed everything within 120 s";
  size_t duplicates = 0;
  size_t missing = 0;
  size_t unexpected = 0;
  size_t pushes = 0;
  size_t overtaken = 0;
  for (TestDevice* device : online) {
    SCOPED_TRACE(Who(*device));
    const PushTally tally = TallyPushes(device->Pushed(conv), expected[device]);
    pushes += tally.pushed;
    overtaken += tally.overtaken;
    duplicates += tally.duplicates;
    missing += tally.missing.size();
    unexpected += tally.unexpected.size();
    EXPECT_EQ(tally.duplicates, 0u) << tally.ToString();
    EXPECT_TRUE(tally.missing.empty()) << tally.ToString();
    EXPECT_TRUE(tally.unexpected.empty()) << tally.ToString();
    ExpectMatchesAcked(MessagesOf(device->Pushed(conv)), acked, conv, Who(*device));
    // Held by seq as the SDK holds them (with its own sends): the whole conversation, in order.
    EXPECT_TRUE(SeqsAre(device->Held(conv), acked.seqs));
    EXPECT_EQ(device->ContiguousSeq(conv), acked.seqs.back());
    EXPECT_TRUE(device->conflicts().empty()) << device->conflicts().front();
    EXPECT_TRUE(device->errors().empty()) << device->errors().front().ShortDebugString();
    EXPECT_EQ(device->unexpected_frames(), 0);
    EXPECT_TRUE(device->connected());
  }
  // One logic node serves the group: it pushes the group's messages in seq order (SeqOrder), so a
  // device sees nearly all of them arrive in order (not all: a seq can complete in the instant
  // between Redis numbering another and that one being expected).
  EXPECT_LE(overtaken * 100, pushes) << overtaken << " of " << pushes << " pushes arrived after a "
                                     << "higher seq";
  std::printf(
      "%d messages from %zu senders to %d online of %d members (%d overload refusals, retried): "
      "sent in %.1f s, all pushed after %.1f s; %zu duplicates, %zu missing, %zu unexpected, %zu "
      "of %zu pushes out of order\n",
      kTotal, std::size(kSenderIndex), kOnline, kMembers, overload_refusals, send_seconds,
      deliver_seconds, duplicates, missing, unexpected, overtaken, pushes);

  // The offline members log in (on both gateways) and find everything waiting.
  const auto offline_start = Clock::now();
  for (int index = kOnline; index < kMembers; ++index) {
    TestDevice& device = *devices[index];
    SCOPED_TRACE(Who(device));
    ASSERT_TRUE(device.Login(ports[index % 2]));
    const std::optional<im::v1::Conversation> listed_conv = device.FindConversation(conv);
    ASSERT_TRUE(listed_conv.has_value()) << "the group is not in the conversation list";
    EXPECT_EQ(listed_conv->max_seq(), acked.seqs.back());
    EXPECT_EQ(listed_conv->read_seq(), 0u);
    EXPECT_EQ(listed_conv->last_message().seq(), acked.seqs.back());
    const TestDevice::SyncResult synced = device.SyncAll(conv, 0, 200);  // logic's page cap
    ASSERT_TRUE(synced.ok) << synced.error;
    EXPECT_EQ(listed_conv->unread(), kTotal + NoticeCount(synced.messages));
    EXPECT_GE(synced.pages, kTotal / 200);
    EXPECT_TRUE(synced.holes.empty());
    EXPECT_EQ(synced.max_seq, acked.seqs.back());
    EXPECT_TRUE(SeqsAre(synced.messages, acked.seqs));
    ExpectMatchesAcked(synced.messages, acked, conv, Who(device));
    EXPECT_EQ(device.PushedCount(conv), 0u) << "pushed a message sent while it was offline";
    device.Disconnect();
  }
  std::printf("%d offline members synced %d messages each in %.1f s\n", kMembers - kOnline, kTotal,
              SecondsSince(offline_start));
}

// b. Two logic nodes share the fan-out consumer group; one is killed with SIGKILL while three
// members send. Senders retry what was not acknowledged with the same client_msg_id. Every
// acknowledged message reaches every online member (duplicates are counted and reported), none
// is stored twice, and every device holds the conversation complete in seq order.
TEST(GroupClusterTest, LogicNodeKilledMidStreamLosesNoAcknowledgedMessage) {
  ClusterOptions options = GroupClusterOptions();
  options.logic_nodes = 2;
  LocalCluster cluster(options);
  ASSERT_TRUE(cluster.Start());
  constexpr int kMembers = 40;
  constexpr int kOnline = 20;
  constexpr int kPerSender = 150;
  constexpr int kSenderIndex[] = {0, 7, 14};
  constexpr int kTotal = kPerSender * static_cast<int>(std::size(kSenderIndex));
  const std::vector<uint16_t> ports = {cluster.client_port(0), cluster.client_port(1)};

  std::vector<std::unique_ptr<TestDevice>> devices;
  std::vector<std::string> uids;
  for (int i = 0; i < kMembers; ++i) {
    devices.push_back(cluster.Device(absl::StrFormat("m%02d", i), "phone"));
    uids.push_back(devices.back()->uid());
  }
  std::vector<TestDevice*> online;
  for (int i = 0; i < kOnline; ++i) {
    ASSERT_TRUE(devices[i]->Login(ports[i % 2]));
    online.push_back(devices[i].get());
  }
  const std::string group = CreateGroup(*devices[0], {uids.begin() + 1, uids.end()});
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);

  SenderRun run;
  std::set<TestDevice*> sending;
  for (int index : kSenderIndex) {
    GroupSender& sender = run.Add();
    sender.device = devices[index].get();
    sender.conv = conv;
    sender.ports = {ports[index % 2], ports[1 - index % 2]};
    sender.count = kPerSender;
    sender.window = 8;
    sender.chunk = 10;
    sender.retry = true;
    sending.insert(sender.device);
  }
  std::vector<TestDevice*> receivers;
  for (TestDevice* device : online) {
    if (sending.count(device) == 0) receivers.push_back(device);
  }
  const auto start = Clock::now();
  run.Start();
  PollAllUntil(
      receivers, [&] { return run.acknowledged() >= kTotal / 3 || run.finished(); },
      Millis(120'000));
  const int acknowledged_at_kill = run.acknowledged();
  EXPECT_TRUE(cluster.KillLogic(1));
  PollAllUntil(
      receivers, [&] { return run.finished(); }, Millis(300'000));
  run.Join();
  const double send_seconds = SecondsSince(start);
  EXPECT_GE(acknowledged_at_kill, kTotal / 3);
  EXPECT_LT(acknowledged_at_kill, kTotal) << "the logic node died after the stream was over";
  int failed_attempts = 0;
  for (const auto& sender : run.senders()) {
    ASSERT_TRUE(sender->failure.empty()) << sender->failure;
    ASSERT_EQ(sender->ok_by_cmid.size(), static_cast<size_t>(kPerSender));
    failed_attempts += sender->failed_attempt_count();
    std::printf("%s: failed attempts %s; %d reconnects\n", sender->device->uid().c_str(),
                sender->FailureSummary().c_str(), sender->reconnects);
  }
  const Acked acked = CollectAcked(run, conv);
  ASSERT_EQ(acked.seqs.size(), static_cast<size_t>(kTotal));

  // Pushes: every acknowledged message of the others reaches every online member.
  std::map<TestDevice*, std::set<uint64_t>> expected;
  for (TestDevice* device : online) expected[device] = acked.NotFrom(device->uid());
  const bool complete = PollAllUntil(
      online,
      [&] {
        for (TestDevice* device : online) {
          const std::vector<PushedMessage> pushed = device->Pushed(conv);
          if (!TallyPushes(pushed, expected[device]).missing.empty()) return false;
        }
        return true;
      },
      kRecoveryTimeout);
  const double deliver_seconds = SecondsSince(start);
  PollAllFor(online, kQuietPeriod);
  EXPECT_TRUE(complete) << "acknowledged messages still missing " << kRecoveryTimeout.count() / 1000
                        << " s after the stream";
  size_t duplicates = 0;
  size_t redelivered_devices = 0;
  for (TestDevice* device : online) {
    SCOPED_TRACE(Who(*device));
    const PushTally tally = TallyPushes(device->Pushed(conv), expected[device]);
    duplicates += tally.duplicates;
    if (tally.duplicates > 0) redelivered_devices++;
    EXPECT_TRUE(tally.missing.empty()) << tally.ToString();
    EXPECT_TRUE(tally.unexpected.empty()) << tally.ToString();
    ExpectMatchesAcked(MessagesOf(device->Pushed(conv)), acked, conv, Who(*device));
    EXPECT_TRUE(device->conflicts().empty()) << device->conflicts().front();
    EXPECT_TRUE(device->errors().empty()) << device->errors().front().ShortDebugString();
  }
  std::printf(
      "%d messages (%d failed attempts, retried), logic-2 killed after %d acknowledged: sent in "
      "%.1f s, all pushed after %.1f s; %zu duplicate pushes on %zu of %d devices\n",
      kTotal, failed_attempts, acknowledged_at_kill, send_seconds, deliver_seconds, duplicates,
      redelivered_devices, kOnline);

  // Stored: each acknowledged message once; holes explained. Then every online device, after
  // the SDK's catch-up (which learns the holes), holds the conversation complete and in order.
  TestDevice reader(uids[1], "tablet", LocalCluster::Token(uids[1]));
  ASSERT_TRUE(reader.Login(ports[0]));
  const TestDevice::SyncResult stored = ExpectStoredExactlyAcked(reader, conv, acked);
  for (TestDevice* device : online) {
    SCOPED_TRACE(Who(*device));
    const TestDevice::SyncResult caught_up = device->CatchUp(conv, 200);
    EXPECT_TRUE(caught_up.ok) << caught_up.error;
    EXPECT_TRUE(SeqsAre(device->Held(conv), acked.seqs));
    EXPECT_EQ(device->ContiguousSeq(conv), stored.max_seq);
  }
}

// c. Membership bounds visibility: a member sees only what was sent after it joined (by push and
// by Sync); after it leaves it is pushed nothing and may neither send nor sync; after it joins
// again it sees what comes from then on.
TEST_P(GroupTest, JoinAndLeaveBoundWhatAMemberSees) {
  auto cluster = Deploy(GroupClusterOptions());
  ASSERT_TRUE(cluster->Start());
  auto alice = cluster->Device("alice", "phone");  // owner
  auto bob = cluster->Device("bob", "phone");      // member throughout
  auto carol = cluster->Device("carol", "phone");  // joins, leaves, joins again
  ASSERT_TRUE(alice->Login(cluster->client_port(0)));
  ASSERT_TRUE(bob->Login(cluster->client_port(1)));
  ASSERT_TRUE(carol->Login(cluster->client_port(1)));
  const std::vector<TestDevice*> all = {alice.get(), bob.get(), carol.get()};
  const std::string group = CreateGroup(*alice, {bob->uid()});
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);

  // Before carol joins: she is not a member.
  const std::vector<uint64_t> before = SendSome(*alice, conv, "before", 5);
  ASSERT_EQ(before.size(), 5u);
  EXPECT_EQ(carol->SyncPage(conv, 0, 50).value_or(im::v1::SyncResp()).status().code(),
            im::v1::NOT_MEMBER);

  const std::optional<im::v1::GroupJoinResp> joined = carol->GroupJoin(group);
  ASSERT_TRUE(IsOk(joined)) << Describe(joined);
  EXPECT_EQ(joined->joined_seq(), before.back());
  const TestDevice::GroupMembersResult members = alice->ListGroupMembers(group, 50);
  ASSERT_TRUE(members.ok) << members.error;
  std::map<std::string, im::v1::GroupMember> by_uid = ByUid(members.members);
  ASSERT_EQ(by_uid.count(carol->uid()), 1u);
  EXPECT_EQ(by_uid[carol->uid()].role(), im::v1::MEMBER);
  EXPECT_EQ(by_uid[carol->uid()].joined_seq(), before.back());

  // While she is a member: bob's messages and her own.
  const std::vector<uint64_t> during = SendSome(*bob, conv, "during", 5);
  ASSERT_EQ(during.size(), 5u);
  const std::vector<uint64_t> carols = SendSome(*carol, conv, "carol", 1);
  ASSERT_EQ(carols.size(), 1u);
  EXPECT_TRUE(carol->WaitForPushed(conv, during.size(), kPushTimeout));
  EXPECT_TRUE(alice->WaitForPushed(conv, during.size() + carols.size(), kPushTimeout));
  EXPECT_TRUE(bob->WaitForPushed(conv, before.size() + carols.size(), kPushTimeout));
  PollAllFor(all, kQuietPeriod);
  {
    SCOPED_TRACE("carol while a member");
    const PushTally tally = TallyPushes(carol->Pushed(conv), SetOf(during));
    EXPECT_TRUE(tally.exact()) << "carol: " << tally.ToString();
    const TestDevice::SyncResult synced = carol->SyncAll(conv, 0, 50);
    ASSERT_TRUE(synced.ok) << synced.error;
    EXPECT_TRUE(SeqsAre(synced.messages, Concat({during, carols})))
        << "Sync from 0 must start after her joined_seq " << before.back();
    EXPECT_EQ(synced.max_seq, carols.back());
    const std::optional<im::v1::Conversation> listed = carol->FindConversation(conv);
    ASSERT_TRUE(listed.has_value()) << "the group is not in carol's conversation list";
    EXPECT_EQ(listed->max_seq(), carols.back());
    EXPECT_EQ(listed->unread(), during.size() + NoticeCount(synced.messages))
        << "unread counts only what she may see " << listed->ShortDebugString();
  }

  const std::optional<im::v1::GroupLeaveResp> left = carol->GroupLeave(group);
  ASSERT_TRUE(IsOk(left)) << Describe(left);
  const TestDevice::GroupMembersResult after_leave_members = alice->ListGroupMembers(group, 50);
  ASSERT_TRUE(after_leave_members.ok) << after_leave_members.error;
  EXPECT_EQ(UidsOf(after_leave_members.members), (std::set<std::string>{alice->uid(), bob->uid()}));

  // After she left: nothing reaches her, and she may neither send nor sync.
  const size_t carol_pushed = carol->PushedCount(conv);
  const std::vector<uint64_t> while_out = SendSome(*alice, conv, "while-out", 5);
  ASSERT_EQ(while_out.size(), 5u);
  EXPECT_TRUE(
      bob->WaitForPushed(conv, before.size() + carols.size() + while_out.size(), kPushTimeout));
  PollAllFor(all, kQuietPeriod);
  EXPECT_EQ(carol->PushedCount(conv), carol_pushed)
      << "pushed after leaving: " << TallyPushes(carol->Pushed(conv), SetOf(during)).ToString();
  const std::optional<im::v1::SendResp> refused = carol->SendToConv(conv, "out-1", "let me back");
  EXPECT_EQ(CodeOf(refused), im::v1::NOT_MEMBER) << Describe(refused);
  for (uint64_t after : {uint64_t{0}, carols.back()}) {
    const std::optional<im::v1::SyncResp> sync = carol->SyncPage(conv, after, 50);
    EXPECT_EQ(CodeOf(sync), im::v1::NOT_MEMBER)
        << "Sync after_seq=" << after << ": " << Describe(sync);
    if (sync) {
      EXPECT_EQ(sync->messages_size(), 0) << sync->ShortDebugString();
    }
  }

  // Joined again: from then on.
  const std::optional<im::v1::GroupJoinResp> rejoined = carol->GroupJoin(group);
  ASSERT_TRUE(IsOk(rejoined)) << Describe(rejoined);
  EXPECT_EQ(rejoined->joined_seq(), while_out.back());
  const std::vector<uint64_t> after_rejoin = SendSome(*alice, conv, "after-rejoin", 5);
  ASSERT_EQ(after_rejoin.size(), 5u);
  EXPECT_TRUE(carol->WaitForPushed(conv, during.size() + after_rejoin.size(), kPushTimeout));
  PollAllFor(all, kQuietPeriod);
  {
    SCOPED_TRACE("carol after joining again");
    const PushTally tally = TallyPushes(carol->Pushed(conv), SetOf(Concat({during, after_rejoin})));
    EXPECT_TRUE(tally.exact()) << "carol: " << tally.ToString();
    const TestDevice::SyncResult synced = carol->SyncAll(conv, 0, 50);
    ASSERT_TRUE(synced.ok) << synced.error;
    EXPECT_TRUE(SeqsAre(synced.messages, after_rejoin))
        << "Sync from 0 must start after the joined_seq of her second join " << while_out.back();
  }
  const std::vector<uint64_t> back = SendSome(*carol, conv, "back", 1);
  ASSERT_EQ(back.size(), 1u);

  // Bob, a member throughout, was pushed everything except his own messages and holds it all.
  const std::vector<uint64_t> everything =
      Concat({before, during, carols, while_out, after_rejoin, back});
  EXPECT_TRUE(bob->WaitForPushed(conv, everything.size() - during.size(), kPushTimeout));
  PollAllFor(all, kQuietPeriod);
  const PushTally bob_tally = TallyPushes(
      bob->Pushed(conv), SetOf(Concat({before, carols, while_out, after_rejoin, back})));
  EXPECT_TRUE(bob_tally.exact()) << "bob: " << bob_tally.ToString();
  const TestDevice::SyncResult bob_synced = bob->SyncAll(conv, 0, 50);
  ASSERT_TRUE(bob_synced.ok) << bob_synced.error;
  EXPECT_TRUE(SeqsAre(bob_synced.messages, everything));
  EXPECT_EQ(bob_synced.max_seq, back.back());
  // Every seq holds a message or the notice of a membership change: nothing else took one.
  const std::vector<uint64_t> all_seqs = SeqsOf(bob_synced.messages);
  std::vector<uint64_t> dense;
  for (uint64_t seq = 1; seq <= all_seqs.size(); ++seq) dense.push_back(seq);
  EXPECT_EQ(all_seqs, dense);
  EXPECT_EQ(NoticeCount(bob_synced.messages), all_seqs.size() - everything.size());
  for (TestDevice* device : all) {
    EXPECT_TRUE(device->conflicts().empty()) << device->conflicts().front();
    EXPECT_TRUE(device->errors().empty()) << device->errors().front().ShortDebugString();
  }
}

// d. A non-member's send is refused with NOT_MEMBER and leaves no trace: nothing stored, nothing
// pushed, no seq taken.
TEST_P(GroupTest, NonMemberSendIsRefusedAndStoresNothing) {
  auto cluster = Deploy(GroupClusterOptions());
  ASSERT_TRUE(cluster->Start());
  auto alice = cluster->Device("alice", "phone");
  auto bob = cluster->Device("bob", "phone");
  auto mallory = cluster->Device("mallory", "phone");
  ASSERT_TRUE(alice->Login(cluster->client_port(0)));
  ASSERT_TRUE(bob->Login(cluster->client_port(1)));
  ASSERT_TRUE(mallory->Login(cluster->client_port(1)));
  const std::vector<TestDevice*> all = {alice.get(), bob.get(), mallory.get()};
  const std::string group = CreateGroup(*alice, {bob->uid()});
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);
  const std::vector<uint64_t> sent = SendSome(*alice, conv, "m", 3);
  ASSERT_EQ(sent.size(), 3u);
  EXPECT_TRUE(bob->WaitForPushed(conv, sent.size(), kPushTimeout));

  for (int attempt = 0; attempt < 2; ++attempt) {  // a retry is refused the same way
    const std::optional<im::v1::SendResp> refused =
        mallory->SendToConv(conv, "intrude", "not a member");
    EXPECT_EQ(CodeOf(refused), im::v1::NOT_MEMBER) << Describe(refused);
    if (refused) {
      EXPECT_EQ(refused->seq(), 0u) << refused->ShortDebugString();
    }
  }
  const std::optional<im::v1::SyncResp> sync = mallory->SyncPage(conv, 0, 50);
  EXPECT_EQ(CodeOf(sync), im::v1::NOT_MEMBER) << Describe(sync);
  if (sync) {
    EXPECT_EQ(sync->messages_size(), 0);
  }
  const std::optional<im::v1::SendResp> nowhere =
      mallory->SendToConv(GroupConvId(cluster->Uid("no-such-group")), "nowhere", "hello?");
  EXPECT_TRUE(nowhere.has_value());
  EXPECT_NE(CodeOf(nowhere), im::v1::OK)
      << "a send to a group that does not exist: " << Describe(nowhere);
  const TestDevice::ConversationsResult mallory_convs = mallory->ListConversations(50);
  ASSERT_TRUE(mallory_convs.ok) << mallory_convs.error;
  for (const im::v1::Conversation& c : mallory_convs.conversations) {
    EXPECT_NE(c.conv_id(), conv) << "a refused send listed the group for the sender";
  }

  PollAllFor(all, kQuietPeriod);
  EXPECT_EQ(alice->PushedCount(conv), 0u);
  EXPECT_EQ(bob->PushedCount(conv), sent.size());
  const TestDevice::SyncResult synced = bob->SyncAll(conv, 0, 50);
  ASSERT_TRUE(synced.ok) << synced.error;
  EXPECT_TRUE(SeqsAre(synced.messages, sent));
  EXPECT_TRUE(synced.holes.empty());
  EXPECT_EQ(synced.max_seq, sent.back());
  for (const im::v1::Message& m : synced.messages) {
    EXPECT_NE(m.sender(), mallory->uid()) << m.ShortDebugString();
  }
  const std::optional<im::v1::Conversation> listed = bob->FindConversation(conv);
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->max_seq(), sent.back());
  EXPECT_EQ(listed->last_message().sender(), alice->uid());
  // No seq was taken for the refused sends: the next message follows on.
  const std::vector<uint64_t> next = SendSome(*alice, conv, "next", 1);
  ASSERT_EQ(next.size(), 1u);
  EXPECT_EQ(next[0], sent.back() + 1);
}

// A group with `members` members on the cluster's gateways (alternating), the first `online` of
// them logged in, and `senders` of the online ones streaming `per_sender` messages each to it
// (pipelined, `window` unanswered at a time, failed sends retried with their client_msg_id).
struct GroupStream {
  std::vector<std::unique_ptr<TestDevice>> devices;
  std::vector<TestDevice*> online;
  std::vector<TestDevice*> receivers;  // online, not sending
  std::string conv;
  SenderRun run;

  bool SetUp(LocalCluster& cluster, int members, int online_count,
             const std::vector<int>& sender_index, int per_sender, size_t window) {
    const std::vector<uint16_t> ports = {cluster.client_port(0), cluster.client_port(1)};
    std::vector<std::string> uids;
    for (int i = 0; i < members; ++i) {
      devices.push_back(cluster.Device(absl::StrFormat("m%03d", i), "phone"));
      uids.push_back(devices.back()->uid());
    }
    for (int i = 0; i < online_count; ++i) {
      if (!devices[i]->Login(ports[i % 2])) return false;
      online.push_back(devices[i].get());
    }
    const std::string group = CreateGroup(*devices[0], {uids.begin() + 1, uids.end()});
    if (group.empty()) return false;
    conv = GroupConvId(group);
    std::set<TestDevice*> sending;
    for (int index : sender_index) {
      GroupSender& sender = run.Add();
      sender.device = devices[index].get();
      sender.conv = conv;
      sender.ports = {ports[index % 2], ports[1 - index % 2]};
      sender.count = per_sender;
      sender.window = window;
      sender.chunk = window;
      sender.retry = true;
      sending.insert(sender.device);
    }
    for (TestDevice* device : online) {
      if (sending.count(device) == 0) receivers.push_back(device);
    }
    return true;
  }

  // After the senders finished: every online member is pushed every acknowledged message of the
  // others exactly once (waiting up to `timeout` for the last ones); returns the duplicate
  // pushes, which it also expects to be none.
  size_t ExpectEachPushedOnce(Millis timeout) {
    for (const auto& sender : run.senders()) {
      EXPECT_TRUE(sender->failure.empty()) << sender->failure;
      EXPECT_EQ(sender->ok_by_cmid.size(), sender->body_by_cmid.size());
    }
    const Acked acked = CollectAcked(run, conv);
    EXPECT_FALSE(acked.seqs.empty());
    return ExpectEachPushed(online, conv, acked, timeout, /*duplicates_allowed=*/false);
  }
};

// A cluster on a broker of its own, with a steady group stream (two senders, four messages at a
// time, `pause` after each) already fanning out: for the tests that stop or pause the broker
// under it. Members are destroyed in reverse: devices, then the cluster, then the broker.
struct StreamOnOwnKafka {
  OwnKafka kafka;
  std::unique_ptr<LocalCluster> cluster;
  GroupStream stream;

  // Expects each step to work; false after a failed one.
  bool Start(Millis pause) {
    if (!kafka.Start()) return false;
    ClusterOptions options = GroupClusterOptions();
    options.kafka_brokers = kafka.address();
    cluster = std::make_unique<LocalCluster>(options);
    if (!cluster->Start() || !stream.SetUp(*cluster, 20, 10, {0, 5}, 100'000, 4)) return false;
    for (const auto& sender : stream.run.senders()) sender->pause = pause;
    stream.run.Start();
    const bool fanning_out = PollAllUntil(
        stream.receivers,
        [&] { return stream.receivers.front()->PushedSeqCount(stream.conv) >= 20; },
        Millis(60'000));
    EXPECT_TRUE(fanning_out) << "no fan-out before the broker was disturbed";
    return fanning_out;
  }
};

// e. The Kafka broker stops for ten seconds in the middle of a send stream and starts again.
// Sends may fail while it is down (and are retried), but every acknowledged one reaches every
// online member, and none is stored twice.
TEST(GroupClusterTest, KafkaStoppedForTenSecondsLosesNoAcknowledgedMessage) {
  StreamOnOwnKafka fault;
  ASSERT_TRUE(fault.Start(Millis(200)));
  OwnKafka& kafka = fault.kafka;
  LocalCluster& cluster = *fault.cluster;
  GroupStream& stream = fault.stream;
  SenderRun& run = stream.run;
  const std::vector<TestDevice*>& online = stream.online;
  const std::vector<TestDevice*>& receivers = stream.receivers;
  const std::string& conv = stream.conv;
  const int acknowledged_before = run.acknowledged();
  const auto stop_start = Clock::now();
  ASSERT_TRUE(kafka.Stop());
  const double stop_seconds = SecondsSince(stop_start);
  PollAllFor(receivers, Millis(10'000));
  const int acknowledged_while_down = run.acknowledged() - acknowledged_before;
  const auto restart_start = Clock::now();
  ASSERT_TRUE(kafka.Start());
  const double restart_seconds = SecondsSince(restart_start);
  const int acknowledged_at_restart = run.acknowledged();
  const int acknowledged_while_starting =
      acknowledged_at_restart - acknowledged_before - acknowledged_while_down;
  PollAllUntil(
      receivers, [&] { return run.acknowledged() >= acknowledged_at_restart + 40; },
      Millis(90'000));
  run.StopNew();
  PollAllUntil(
      receivers, [&] { return run.finished(); }, Millis(300'000));
  run.Join();
  const int acknowledged_after = run.acknowledged() - acknowledged_at_restart;
  EXPECT_GE(acknowledged_after, 40) << "sends did not recover after the broker came back";
  for (const auto& sender : run.senders()) {
    ASSERT_TRUE(sender->failure.empty()) << sender->failure;
    std::printf("%s: %zu acknowledged; failed attempts %s; %d reconnects\n",
                sender->device->uid().c_str(), sender->ok_by_cmid.size(),
                sender->FailureSummary().c_str(), sender->reconnects);
    EXPECT_EQ(sender->ok_by_cmid.size(), sender->body_by_cmid.size())
        << "every message tried was acknowledged in the end";
  }
  const Acked acked = CollectAcked(run, conv);
  ASSERT_FALSE(acked.seqs.empty());

  const auto deliver_start = Clock::now();
  const size_t duplicates =
      ExpectEachPushed(online, conv, acked, kRecoveryTimeout, /*duplicates_allowed=*/true);
  const double deliver_seconds = SecondsSince(deliver_start);
  std::printf(
      "%zu messages acknowledged: %d before the broker was stopped, %d while it stopped (%.1f s) "
      "and was down (10 s), %d while it started (%.1f s), %d after; all pushed %.1f s after the "
      "stream; %zu duplicate pushes\n",
      acked.seqs.size(), acknowledged_before, acknowledged_while_down, stop_seconds,
      acknowledged_while_starting, restart_seconds, acknowledged_after, deliver_seconds,
      duplicates);

  const std::string& reader_uid = stream.devices[1]->uid();
  TestDevice reader(reader_uid, "tablet", LocalCluster::Token(reader_uid));
  ASSERT_TRUE(reader.Login(cluster.client_port(0)));
  ExpectStoredExactlyAcked(reader, conv, acked);
}

// e2. The fan-out consumer group rebalances again and again during a send stream (a consumer
// joins and leaves it, as a logic node starting or stopping would; the lanes' own consumers do it
// once at every start). Every revocation happens while records are read but not yet committed:
// none of them may be pushed twice (a clean-clone CI run once saw 197 pushed twice after the
// start-up rebalance).
TEST(GroupClusterTest, ConsumerGroupRebalancesDuringAStreamPushNothingTwice) {
  LocalCluster cluster(GroupClusterOptions());
  ASSERT_TRUE(cluster.Start());
  GroupStream stream;
  ASSERT_TRUE(stream.SetUp(cluster, 20, 10, {0, 3, 6}, 100'000, 8));
  const std::string churn_topic = cluster.kafka_topic_prefix() + "churn";
  absl::StatusOr<logic::KafkaHandle> admin = logic::NewKafkaAdminClient(cluster.kafka());
  ASSERT_TRUE(admin.ok()) << admin.status();
  ASSERT_TRUE(logic::CreateKafkaTopics(admin->get(), {churn_topic}, 1, 1, Millis(30'000)).ok());
  ConsumerGroupChurn churn(cluster.kafka(), cluster.kafka_consumer_group(), churn_topic,
                           Millis(300));
  churn.Start();
  // The stream starts once the group rebalances already, and lasts a dozen rebalances.
  ASSERT_TRUE(PollAllUntil(
      stream.receivers, [&] { return churn.joins() >= 1; }, Millis(60'000)))
      << churn.error();
  stream.run.Start();
  const bool churned = PollAllUntil(
      stream.receivers, [&] { return churn.joins() >= 7 || !churn.error().empty(); },
      Millis(120'000));
  stream.run.StopNew();
  PollAllUntil(
      stream.receivers, [&] { return stream.run.finished(); }, Millis(300'000));
  churn.Stop();
  stream.run.Join();
  EXPECT_TRUE(churn.error().empty()) << churn.error();
  EXPECT_TRUE(churned) << "only " << churn.joins() << " joins of the consumer group in 120 s";
  const size_t duplicates = stream.ExpectEachPushedOnce(kRecoveryTimeout);
  std::printf("%d rebalances during the stream; %zu duplicate pushes; %.0f repeats skipped\n",
              2 * churn.joins(), duplicates,
              cluster.LogicMetric(0, "im_logic_fanout_repeats_skipped_total").value_or(-1));
  EXPECT_TRUE(logic::DeleteKafkaTopics(admin->get(), {churn_topic}, Millis(30'000)).ok());
}

// e3. The broker pauses for four seconds (SIGSTOP: connections stay open, nothing is answered)
// during a send stream. Logic pushes what waited longer than kafka.fallback_after_ms itself, so
// sends keep succeeding; when the broker wakes it stores those records as well and the consumer
// reads them: the members are still pushed each message exactly once.
TEST(GroupClusterTest, KafkaPausedDuringAStreamPushesNothingTwice) {
  StreamOnOwnKafka fault;
  ASSERT_TRUE(fault.Start(Millis(100)));
  OwnKafka& kafka = fault.kafka;
  LocalCluster& cluster = *fault.cluster;
  GroupStream& stream = fault.stream;
  ASSERT_TRUE(kafka.Pause());
  PollAllFor(stream.receivers, Millis(4'000));
  ASSERT_TRUE(kafka.Resume());
  const int acknowledged_at_resume = stream.run.acknowledged();
  PollAllUntil(
      stream.receivers, [&] { return stream.run.acknowledged() >= acknowledged_at_resume + 40; },
      Millis(90'000));
  stream.run.StopNew();
  PollAllUntil(
      stream.receivers, [&] { return stream.run.finished(); }, Millis(300'000));
  stream.run.Join();
  const size_t duplicates = stream.ExpectEachPushedOnce(kRecoveryTimeout);
  const double fallbacks =
      cluster.LogicMetric(0, "im_logic_fanout_kafka_fallbacks_total").value_or(0);
  const double repeats =
      cluster.LogicMetric(0, "im_logic_fanout_repeats_skipped_total").value_or(0);
  std::printf(
      "%d acknowledged; %.0f pushed directly during the pause, %.0f of them consumed "
      "again and skipped; %zu duplicate pushes\n",
      stream.run.acknowledged(), fallbacks, repeats, duplicates);
  EXPECT_GT(fallbacks, 0) << "nothing fell back: the pause tested nothing";
  EXPECT_GT(repeats, 0) << "Kafka delivered none of the records pushed directly";
}

// f. The member cap: a group never grows past IM_GROUP_MEMBER_CAP (the owner counts); a refused
// addition adds no one; a place freed by a leave can be taken.
TEST_P(GroupTest, GroupNeverGrowsPastTheMemberCap) {
  ClusterOptions options = GroupClusterOptions();
  options.gateways = 1;
  options.logic_env = {{"IM_GROUP_MEMBER_CAP", "5"}};
  auto cluster = Deploy(options);
  ASSERT_TRUE(cluster->Start());
  const uint16_t port = cluster->client_port(0);
  auto owner = cluster->Device("owner", "phone");
  auto bob = cluster->Device("bob", "phone");
  auto frank = cluster->Device("frank", "phone");
  ASSERT_TRUE(owner->Login(port));
  ASSERT_TRUE(bob->Login(port));
  ASSERT_TRUE(frank->Login(port));
  const std::string carol = cluster->Uid("carol");
  const std::string dave = cluster->Uid("dave");
  const std::string erin = cluster->Uid("erin");

  const std::optional<im::v1::GroupCreateResp> too_big =
      owner->GroupCreate("too big", {bob->uid(), carol, dave, erin, frank->uid()});
  EXPECT_EQ(CodeOf(too_big), im::v1::GROUP_FULL) << "six members, cap 5: " << Describe(too_big);

  const std::string group = CreateGroup(*owner, {bob->uid(), carol, dave});
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);
  auto member_uids = [&] {
    const TestDevice::GroupMembersResult listed = owner->ListGroupMembers(group, 50);
    EXPECT_TRUE(listed.ok) << listed.error;
    return UidsOf(listed.members);
  };
  const std::optional<im::v1::GroupJoinResp> two_more =
      owner->GroupJoin(group, {erin, frank->uid()});
  EXPECT_EQ(CodeOf(two_more), im::v1::GROUP_FULL) << "four + two, cap 5: " << Describe(two_more);
  EXPECT_EQ(member_uids(), (std::set<std::string>{owner->uid(), bob->uid(), carol, dave}))
      << "a refused addition must add no one";

  const std::optional<im::v1::GroupJoinResp> one_more = owner->GroupJoin(group, {erin});
  EXPECT_TRUE(IsOk(one_more)) << "four + one, cap 5: " << Describe(one_more);
  const std::optional<im::v1::GroupJoinResp> full = frank->GroupJoin(group);
  EXPECT_EQ(CodeOf(full), im::v1::GROUP_FULL) << Describe(full);
  EXPECT_EQ(CodeOf(frank->SendToConv(conv, "f-1", "am I in?")), im::v1::NOT_MEMBER);
  EXPECT_EQ(member_uids(), (std::set<std::string>{owner->uid(), bob->uid(), carol, dave, erin}));

  const std::optional<im::v1::GroupLeaveResp> left = bob->GroupLeave(group);
  ASSERT_TRUE(IsOk(left)) << Describe(left);
  const std::optional<im::v1::GroupJoinResp> now_fits = frank->GroupJoin(group);
  EXPECT_TRUE(IsOk(now_fits)) << "a place was freed: " << Describe(now_fits);
  EXPECT_EQ(member_uids(), (std::set<std::string>{owner->uid(), carol, dave, erin, frank->uid()}));
  const std::optional<im::v1::SendResp> sent = frank->SendToConv(conv, "f-2", "in at last");
  EXPECT_TRUE(IsOk(sent)) << Describe(sent);
  EXPECT_TRUE(owner->WaitForPushed(conv, 1, kPushTimeout));
}

// f. Members paging: every member exactly once across pages no larger than the limit, with its
// role and joined_seq, as seen by the owner and by a plain member.
TEST_P(GroupTest, MembersPagingListsEveryMemberOnceWithRoles) {
  ClusterOptions options = GroupClusterOptions();
  options.gateways = 1;
  auto cluster = Deploy(options);
  ASSERT_TRUE(cluster->Start());
  const uint16_t port = cluster->client_port(0);
  auto owner = cluster->Device("owner", "phone");
  auto late = cluster->Device("late", "phone");
  ASSERT_TRUE(owner->Login(port));
  ASSERT_TRUE(late->Login(port));
  std::vector<std::string> others;
  for (int i = 0; i < 24; ++i) others.push_back(cluster->Uid(absl::StrFormat("m%02d", i)));
  const std::string group = CreateGroup(*owner, others);
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);

  for (auto [uid, role] :
       {std::make_pair(others[0], im::v1::ADMIN), std::make_pair(others[1], im::v1::ADMIN),
        std::make_pair(others[1], im::v1::MEMBER)}) {
    const std::optional<im::v1::GroupSetRoleResp> set = owner->GroupSetRole(group, uid, role);
    EXPECT_TRUE(IsOk(set)) << uid << " -> " << im::v1::GroupRole_Name(role) << ": "
                           << Describe(set);
  }
  const std::vector<uint64_t> sent = SendSome(*owner, conv, "m", 2);
  ASSERT_EQ(sent.size(), 2u);
  const std::optional<im::v1::GroupJoinResp> joined = late->GroupJoin(group);
  ASSERT_TRUE(IsOk(joined)) << Describe(joined);

  std::map<std::string, im::v1::GroupRole> want_role;
  want_role[owner->uid()] = im::v1::OWNER;
  for (const std::string& uid : others) want_role[uid] = im::v1::MEMBER;
  want_role[others[0]] = im::v1::ADMIN;
  want_role[late->uid()] = im::v1::MEMBER;

  for (TestDevice* viewer : {owner.get(), late.get()}) {
    for (uint32_t limit : {7u, 25u, 200u}) {
      SCOPED_TRACE(absl::StrCat(Who(*viewer), " limit ", limit));
      const TestDevice::GroupMembersResult listed = viewer->ListGroupMembers(group, limit);
      ASSERT_TRUE(listed.ok) << listed.error;
      EXPECT_GE(listed.pages, static_cast<int>((want_role.size() + limit - 1) / limit));
      EXPECT_EQ(listed.members.size(), want_role.size());
      std::map<std::string, im::v1::GroupMember> by_uid = ByUid(listed.members);
      for (const auto& [uid, role] : want_role) {
        auto it = by_uid.find(uid);
        if (it == by_uid.end()) {
          ADD_FAILURE() << uid << " is not listed";
          continue;
        }
        EXPECT_EQ(it->second.role(), role) << it->second.ShortDebugString();
        EXPECT_EQ(it->second.joined_seq(), uid == late->uid() ? sent.back() : 0u)
            << it->second.ShortDebugString();
      }
      EXPECT_EQ(by_uid.size(), want_role.size()) << "someone listed who is not a member";
    }
  }
}

// f. Only the owner or an admin adds or removes others; only the owner sets roles. A refused
// request changes nothing.
TEST_P(GroupTest, OnlyOwnerOrAdminAddsOrRemovesOthers) {
  ClusterOptions options = GroupClusterOptions();
  options.gateways = 1;
  auto cluster = Deploy(options);
  ASSERT_TRUE(cluster->Start());
  const uint16_t port = cluster->client_port(0);
  auto owner = cluster->Device("owner", "phone");
  auto admin = cluster->Device("admin", "phone");
  auto carol = cluster->Device("carol", "phone");
  auto dave = cluster->Device("dave", "phone");
  auto erin = cluster->Device("erin", "phone");
  auto xavier = cluster->Device("xavier", "phone");  // not a member at first
  for (TestDevice* device :
       {owner.get(), admin.get(), carol.get(), dave.get(), erin.get(), xavier.get()}) {
    ASSERT_TRUE(device->Login(port));
  }
  const std::string group =
      CreateGroup(*owner, {admin->uid(), carol->uid(), dave->uid(), erin->uid()});
  ASSERT_FALSE(group.empty());
  const std::string conv = GroupConvId(group);
  const std::optional<im::v1::GroupSetRoleResp> promoted =
      owner->GroupSetRole(group, admin->uid(), im::v1::ADMIN);
  ASSERT_TRUE(IsOk(promoted)) << Describe(promoted);
  auto member_uids = [&] {
    const TestDevice::GroupMembersResult listed = owner->ListGroupMembers(group, 50);
    EXPECT_TRUE(listed.ok) << listed.error;
    return UidsOf(listed.members);
  };
  const std::set<std::string> founders = {owner->uid(), admin->uid(), carol->uid(), dave->uid(),
                                          erin->uid()};

  // A plain member may do none of it.
  const std::optional<im::v1::GroupLeaveResp> removed_by_member =
      carol->GroupLeave(group, dave->uid());
  EXPECT_EQ(CodeOf(removed_by_member), im::v1::PERMISSION_DENIED) << Describe(removed_by_member);
  const std::optional<im::v1::GroupJoinResp> added_by_member =
      carol->GroupJoin(group, {xavier->uid()});
  EXPECT_EQ(CodeOf(added_by_member), im::v1::PERMISSION_DENIED) << Describe(added_by_member);
  const std::optional<im::v1::GroupSetRoleResp> role_by_member =
      carol->GroupSetRole(group, dave->uid(), im::v1::ADMIN);
  EXPECT_EQ(CodeOf(role_by_member), im::v1::PERMISSION_DENIED) << Describe(role_by_member);
  // An admin may not set roles either.
  const std::optional<im::v1::GroupSetRoleResp> role_by_admin =
      admin->GroupSetRole(group, dave->uid(), im::v1::ADMIN);
  EXPECT_EQ(CodeOf(role_by_admin), im::v1::PERMISSION_DENIED) << Describe(role_by_admin);
  EXPECT_EQ(member_uids(), founders);
  // Dave is still in: he is pushed the next message; xavier is not in.
  const std::vector<uint64_t> first = SendSome(*owner, conv, "first", 1);
  ASSERT_EQ(first.size(), 1u);
  EXPECT_TRUE(dave->WaitForPushed(conv, 1, kPushTimeout));
  EXPECT_EQ(CodeOf(xavier->SendToConv(conv, "x-1", "hi")), im::v1::NOT_MEMBER);
  const TestDevice::GroupMembersResult roles = owner->ListGroupMembers(group, 50);
  ASSERT_TRUE(roles.ok) << roles.error;
  std::map<std::string, im::v1::GroupMember> by_uid = ByUid(roles.members);
  EXPECT_EQ(by_uid[dave->uid()].role(), im::v1::MEMBER);
  EXPECT_EQ(by_uid[admin->uid()].role(), im::v1::ADMIN);
  EXPECT_EQ(by_uid[owner->uid()].role(), im::v1::OWNER);

  // The admin removes dave and adds xavier; the owner removes carol; erin leaves by herself.
  const std::optional<im::v1::GroupLeaveResp> removed_by_admin =
      admin->GroupLeave(group, dave->uid());
  EXPECT_TRUE(IsOk(removed_by_admin)) << Describe(removed_by_admin);
  const std::optional<im::v1::GroupJoinResp> added_by_admin =
      admin->GroupJoin(group, {xavier->uid()});
  EXPECT_TRUE(IsOk(added_by_admin)) << Describe(added_by_admin);
  if (added_by_admin) {
    EXPECT_EQ(added_by_admin->joined_seq(), first.back() + 1);  // after dave's removal notice
  }
  const std::optional<im::v1::GroupLeaveResp> removed_by_owner =
      owner->GroupLeave(group, carol->uid());
  EXPECT_TRUE(IsOk(removed_by_owner)) << Describe(removed_by_owner);
  const std::optional<im::v1::GroupLeaveResp> erin_left = erin->GroupLeave(group);
  EXPECT_TRUE(IsOk(erin_left)) << Describe(erin_left);
  EXPECT_EQ(member_uids(), (std::set<std::string>{owner->uid(), admin->uid(), xavier->uid()}));

  EXPECT_EQ(CodeOf(dave->SendToConv(conv, "d-1", "still here?")), im::v1::NOT_MEMBER);
  EXPECT_EQ(CodeOf(carol->SendToConv(conv, "c-1", "still here?")), im::v1::NOT_MEMBER);
  EXPECT_EQ(CodeOf(erin->SendToConv(conv, "e-1", "still here?")), im::v1::NOT_MEMBER);
  const std::vector<uint64_t> second = SendSome(*xavier, conv, "x-2", 1);
  ASSERT_EQ(second.size(), 1u);
  EXPECT_TRUE(owner->WaitForPushed(conv, 1, kPushTimeout));
  EXPECT_TRUE(admin->WaitForPushed(conv, 2, kPushTimeout));
  PollAllFor({dave.get(), carol.get(), erin.get()}, kQuietPeriod);
  for (TestDevice* gone : {dave.get(), carol.get(), erin.get()}) {
    EXPECT_EQ(TallyPushes(gone->Pushed(conv), {first.back()}).unexpected, std::vector<uint64_t>{})
        << Who(*gone) << " was pushed a message after leaving";
  }
}

}  // namespace
}  // namespace im::e2e
