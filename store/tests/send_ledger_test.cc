// One contract for SendLedger: the composed one on in-process stores, and the Redis one (one
// script) against the real server that IM_TEST_REDIS names.
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>

#include "common/clock.h"
#include "store/in_memory_seq_allocator.h"
#include "store/in_memory_ttl_map.h"
#include "store/redis_send_ledger.h"
#include "store/redis_seq_allocator.h"
#include "store/redis_ttl_map.h"
#include "store/tests/test_loop.h"
#include "store/tests/test_redis.h"
#include "store/tests/unique_prefix.h"

namespace im::store {
namespace {

constexpr uint64_t kGap = 100;
constexpr int64_t kTtlMs = 60'000;

// What MySQL would say is persisted, per conversation; tests set it.
struct Floors {
  std::map<std::string, uint64_t> max_seq;
  bool fail = false;  // MySQL down
  SeqFloor AsFunction() {
    return [this](std::string_view conv) -> absl::StatusOr<uint64_t> {
      if (fail) return absl::UnavailableError("mysql down");
      auto it = max_seq.find(std::string(conv));
      return it == max_seq.end() ? 0 : it->second;
    };
  }
};

class ComposedBackend {
 public:
  ComposedBackend(const std::string&, Floors* floors)
      : dedup_(common::UnixMillis), seqs_(floors->AsFunction(), kGap), ledger_(&dedup_, &seqs_) {}
  SendLedger& ledger() { return ledger_; }
  TtlMap& dedup() { return dedup_; }

 private:
  InMemoryTtlMap dedup_;
  InMemorySeqAllocator seqs_;
  ComposedSendLedger ledger_;
};

class RedisBackend {
 public:
  RedisBackend(const std::string& prefix, Floors* floors)
      : dedup_(testing::TestRedis(), prefix),
        seqs_(testing::TestRedis(), floors->AsFunction(), kGap),
        ledger_(testing::TestRedis(), prefix, &seqs_) {}
  SendLedger& ledger() { return ledger_; }
  TtlMap& dedup() { return dedup_; }

 private:
  RedisTtlMap dedup_;
  RedisSeqAllocator seqs_;
  RedisSendLedger ledger_;
};

template <typename Backend>
class SendLedgerContractTest : public ::testing::Test {
 protected:
  SendLedgerContractTest() : prefix_(testing::UniquePrefix()), backend_(prefix_, &floors_) {}
  std::string Conv(const std::string& name) const { return "s:" + prefix_ + name + ":z"; }

  std::string prefix_;
  Floors floors_;
  Backend backend_;
};

using Backends = ::testing::Types<ComposedBackend, RedisBackend>;
TYPED_TEST_SUITE(SendLedgerContractTest, Backends);

TYPED_TEST(SendLedgerContractTest, ATakenClaimIsNumberedAndARepeatFindsTheMarkerWithoutASeq) {
  SendLedger& ledger = this->backend_.ledger();
  const std::string conv = this->Conv("a");
  auto first = ledger.ClaimAndNumber("alice:c1", "pending", kTtlMs, conv);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->seq, 1u);
  EXPECT_FALSE(first->existing.has_value());
  EXPECT_EQ(ledger.ClaimAndNumber("alice:c2", "pending", kTtlMs, conv)->seq, 2u);

  auto repeat = ledger.ClaimAndNumber("alice:c1", "pending", kTtlMs, conv);
  ASSERT_TRUE(repeat.ok()) << repeat.status();
  EXPECT_EQ(repeat->existing, "pending");
  EXPECT_FALSE(repeat->seq.has_value());
  EXPECT_EQ(ledger.ClaimAndNumber("alice:c3", "pending", kTtlMs, conv)->seq, 3u)
      << "the repeat took a seq";
  EXPECT_EQ((*this->backend_.dedup().Get({"alice:c1"}))[0], "pending");
}

TYPED_TEST(SendLedgerContractTest, ABatchHasAnOutcomePerClaimInOrder) {
  const std::string a = this->Conv("ba");
  const std::string b = this->Conv("bb");
  ASSERT_TRUE(this->backend_.dedup().Put("eve:old", "s:a:b|3|9|1000", kTtlMs).ok());
  const std::vector<SendLedger::Claim> claims = {
      {"eve:1", a}, {"eve:2", b}, {"eve:1", a}, {"eve:old", a}, {"eve:3", a}};
  std::vector<absl::StatusOr<SendLedger::Outcome>> outcomes =
      this->backend_.ledger().ClaimAndNumberMany(claims, "pending", kTtlMs);
  ASSERT_EQ(outcomes.size(), claims.size());
  for (const auto& outcome : outcomes) ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ(outcomes[0]->seq, 1u);
  EXPECT_EQ(outcomes[1]->seq, 1u);              // another conversation counts on its own
  EXPECT_EQ(outcomes[2]->existing, "pending");  // the same send twice in one batch
  EXPECT_EQ(outcomes[3]->existing, "s:a:b|3|9|1000");
  EXPECT_EQ(outcomes[4]->seq, 2u);  // the repeats took no seq
  EXPECT_TRUE(this->backend_.ledger().ClaimAndNumberMany({}, "pending", kTtlMs).empty());
}

TYPED_TEST(SendLedgerContractTest, AStoredAnswerIsReturnedAsItIs) {
  SendLedger& ledger = this->backend_.ledger();
  ASSERT_TRUE(this->backend_.dedup().Put("bob:c1", "s:a:b|7|99|1000", kTtlMs).ok());
  auto found = ledger.ClaimAndNumber("bob:c1", "pending", kTtlMs, this->Conv("b"));
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->existing, "s:a:b|7|99|1000");
  EXPECT_FALSE(found->seq.has_value());
}

TYPED_TEST(SendLedgerContractTest, AMissingCounterIsRestoredAboveWhatIsPersisted) {
  const std::string conv = this->Conv("c");
  this->floors_.max_seq[conv] = 40;  // persisted, and the counter is gone (a fresh Redis)
  auto numbered = this->backend_.ledger().ClaimAndNumber("carol:c1", "pending", kTtlMs, conv);
  ASSERT_TRUE(numbered.ok()) << numbered.status();
  EXPECT_EQ(numbered->seq, 40 + kGap + 1);
  EXPECT_EQ(this->backend_.ledger().ClaimAndNumber("carol:c2", "pending", kTtlMs, conv)->seq,
            40 + kGap + 2);
}

TYPED_TEST(SendLedgerContractTest, AClaimWhoseSeqCannotBeHadIsReleased) {
  const std::string conv = this->Conv("d");
  this->floors_.fail = true;  // the counter is missing and the floor cannot be read
  auto failed = this->backend_.ledger().ClaimAndNumber("dora:c1", "pending", kTtlMs, conv);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE((*this->backend_.dedup().Get({"dora:c1"}))[0].has_value())
      << "the claim stays and blocks the retry";
  this->floors_.fail = false;
  auto retried = this->backend_.ledger().ClaimAndNumber("dora:c1", "pending", kTtlMs, conv);
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->seq, 1u);
}

TEST(RedisSendLedgerTest, TheClaimCarriesItsTtl) {
  const std::string prefix = testing::UniquePrefix();
  Floors floors;
  RedisSeqAllocator seqs(testing::TestRedis(), floors.AsFunction(), kGap);
  RedisSendLedger ledger(testing::TestRedis(), prefix, &seqs);
  ASSERT_TRUE(ledger.ClaimAndNumber("dan:c1", "pending", 5'000, "s:" + prefix + ":z").ok());
  testing::RedisAdmin admin;
  const long long ttl = admin.Integer({"PTTL", prefix + "dan:c1"});
  EXPECT_GT(ttl, 0);
  EXPECT_LE(ttl, 5'000);
}

// Counted by Redis itself: a batch's claims and seqs are one script call, read by the server at
// once (one round trip), whatever the batch's size.
TEST(RedisSendLedgerTest, ABatchOfClaimsIsOneRoundTrip) {
  const std::string prefix = testing::UniquePrefix();
  Floors floors;
  // One connection, so that the measured batch finds it made and its scripts loaded.
  std::shared_ptr<RedisConnection> redis = testing::TestRedis(1);
  RedisSeqAllocator seqs(redis, floors.AsFunction(), kGap);
  RedisSendLedger ledger(redis, prefix, &seqs);
  constexpr size_t kBatch = 64;
  std::vector<SendLedger::Claim> first;
  std::vector<SendLedger::Claim> second;
  for (size_t i = 0; i < kBatch; ++i) {
    const std::string conv = "s:" + prefix + std::to_string(i) + ":z";
    first.push_back({"u" + std::to_string(i) + ":first", conv});
    second.push_back({"u" + std::to_string(i) + ":second", conv});
  }
  // The first message of a conversation also restores its counter (from MySQL, a round trip
  // more); the second finds the counter there, as nearly every send does.
  for (const auto& outcome : ledger.ClaimAndNumberMany(first, "pending", kTtlMs)) {
    ASSERT_TRUE(outcome.ok()) << outcome.status();
  }
  testing::RedisAdmin admin;
  const int64_t scripts_before = admin.CommandCalls("evalsha");
  const int64_t reads_before = admin.ReadsProcessed();
  std::vector<absl::StatusOr<SendLedger::Outcome>> outcomes =
      ledger.ClaimAndNumberMany(second, "pending", kTtlMs);
  const int64_t reads = admin.ReadsProcessed() - reads_before;
  const int64_t scripts = admin.CommandCalls("evalsha") - scripts_before;
  for (const auto& outcome : outcomes) {
    ASSERT_TRUE(outcome.ok()) << outcome.status();
    EXPECT_EQ(outcome->seq, 2u);
  }
  EXPECT_EQ(scripts, 1) << "one script call per batch";
  EXPECT_EQ(reads, 2) << "the batch in one read, and the INFO that counted it";
}

// The ledger on an event loop: the same outcomes in one script call, without blocking; a taken
// claim whose counter is missing comes back without a seq (the caller numbers it off the loop).
TEST(RedisAsyncSendLedgerTest, ABatchIsOneScriptCallAndAMissingCounterIsLeftToTheCaller) {
  const std::string prefix = testing::UniquePrefix();
  Floors floors;
  RedisSeqAllocator seqs(testing::TestRedis(), floors.AsFunction(), kGap);
  const std::string known = "s:" + prefix + ":known";
  ASSERT_TRUE(seqs.Next(known).ok());  // the counter exists: 1
  testing::AsyncRedisOnLoop redis(testing::TestRedisOptions());
  RedisAsyncSendLedger ledger(&redis.client(), prefix);
  std::optional<AsyncSendLedger::Outcomes> outcomes;
  const std::vector<SendLedger::Claim> claims = {
      {"a:1", known}, {"a:1", known}, {"a:2", "s:" + prefix + ":fresh"}, {"a:3", known}};
  testing::RedisAdmin admin;
  ASSERT_TRUE(redis.RunUntil([&] { return redis.client().connected(); }));
  const int64_t scripts_before = admin.CommandCalls("evalsha");
  ledger.ClaimAndNumberMany(claims, "pending", kTtlMs,
                            [&](AsyncSendLedger::Outcomes got) { outcomes = std::move(got); });
  ASSERT_TRUE(redis.RunUntil([&] { return outcomes.has_value(); }));
  EXPECT_EQ(admin.CommandCalls("evalsha") - scripts_before, 1);
  ASSERT_EQ(outcomes->size(), 4u);
  for (const auto& outcome : *outcomes) ASSERT_TRUE(outcome.ok()) << outcome.status();
  EXPECT_EQ((*outcomes)[0]->seq, 2u);
  EXPECT_EQ((*outcomes)[1]->existing, "pending");
  EXPECT_FALSE((*outcomes)[2]->seq.has_value()) << "taken, and left to the caller to number";
  EXPECT_FALSE((*outcomes)[2]->existing.has_value());
  EXPECT_EQ((*outcomes)[3]->seq, 3u);
}

}  // namespace
}  // namespace im::store
