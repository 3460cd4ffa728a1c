// One contract, both backends: in-process always, Redis against the real server (IM_TEST_REDIS).
#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "store/in_memory_seq_allocator.h"
#include "store/redis_seq_allocator.h"
#include "store/tests/test_redis.h"

namespace im::store {
namespace {

constexpr uint64_t kGap = 100;

// What MySQL would say is persisted; tests set it.
class FakeFloor {
 public:
  void Set(const std::string& conv, uint64_t max_seq) {
    std::lock_guard<std::mutex> lock(mutex_);
    floors_[conv] = max_seq;
  }
  SeqFloor AsFunction() {
    return [this](std::string_view conv) -> absl::StatusOr<uint64_t> {
      std::lock_guard<std::mutex> lock(mutex_);
      if (fail_) return absl::UnavailableError("mysql down");
      auto it = floors_.find(std::string(conv));
      return it == floors_.end() ? 0 : it->second;
    };
  }
  void set_fail(bool fail) { fail_ = fail; }

 private:
  std::mutex mutex_;
  bool fail_ = false;
  std::map<std::string, uint64_t> floors_;
};

class InMemoryBackend {
 public:
  explicit InMemoryBackend(FakeFloor* floor) : floor_(floor) { Recreate(); }
  SeqAllocator& allocator() { return *allocator_; }
  // A restarted process: counters gone.
  void LoseCounter(const std::string&) { Recreate(); }

 private:
  void Recreate() {
    allocator_ = std::make_unique<InMemorySeqAllocator>(floor_->AsFunction(), kGap);
  }
  FakeFloor* floor_;
  std::unique_ptr<InMemorySeqAllocator> allocator_;
};

class RedisBackend {
 public:
  explicit RedisBackend(FakeFloor* floor)
      : allocator_(testing::TestRedis(), floor->AsFunction(), kGap) {}
  SeqAllocator& allocator() { return allocator_; }
  // Redis restarted with its data lost, for this key.
  void LoseCounter(const std::string& conv) {
    admin_.Integer({"DEL", RedisSeqAllocator::KeyOf(conv)});
  }

 private:
  RedisSeqAllocator allocator_;
  testing::RedisAdmin admin_;
};

template <typename Backend>
class SeqAllocatorContractTest : public ::testing::Test {
 protected:
  SeqAllocatorContractTest() : prefix_(testing::UniquePrefix()), backend_(&floor_) {}
  std::string Conv(const std::string& name) { return "s:" + prefix_ + name; }
  uint64_t Next(const std::string& conv) {
    absl::StatusOr<uint64_t> seq = backend_.allocator().Next(conv);
    EXPECT_TRUE(seq.ok()) << seq.status();
    return seq.value_or(0);
  }

  std::string prefix_;
  FakeFloor floor_;
  Backend backend_;
};

using Backends = ::testing::Types<InMemoryBackend, RedisBackend>;
TYPED_TEST_SUITE(SeqAllocatorContractTest, Backends);

TYPED_TEST(SeqAllocatorContractTest, NewConversationsCountDenselyFromOneIndependently) {
  const std::string a = this->Conv("a");
  const std::string b = this->Conv("b");
  EXPECT_EQ(this->Next(a), 1u);
  EXPECT_EQ(this->Next(a), 2u);
  EXPECT_EQ(this->Next(b), 1u);
  EXPECT_EQ(this->Next(a), 3u);
}

TYPED_TEST(SeqAllocatorContractTest, LostCounterResumesAbovePersistedWithGap) {
  const std::string conv = this->Conv("c");
  for (int i = 0; i < 5; ++i) this->Next(conv);
  this->floor_.Set(conv, 4);  // seq 5 was allocated but not yet persisted when the loss came
  this->backend_.LoseCounter(conv);
  const uint64_t next = this->Next(conv);
  EXPECT_EQ(next, 4 + kGap + 1);
  EXPECT_GT(next, 5u) << "a seq was handed out twice";
  EXPECT_EQ(this->Next(conv), next + 1);
}

TYPED_TEST(SeqAllocatorContractTest, AForgottenCounterIsRestoredAboveTheStoredMessages) {
  // The counter fell behind (its storage lost its last increments): 3 stored, the counter at 1.
  const std::string conv = this->Conv("behind");
  this->Next(conv);
  this->floor_.Set(conv, 3);
  ASSERT_TRUE(this->backend_.allocator().Forget(conv).ok());
  const uint64_t next = this->Next(conv);
  EXPECT_EQ(next, 3 + kGap + 1);
  EXPECT_TRUE(this->backend_.allocator().Forget(this->Conv("never-used")).ok());
}

TYPED_TEST(SeqAllocatorContractTest, FloorFailureIsAnErrorNotARestartAtOne) {
  const std::string conv = this->Conv("d");
  this->floor_.Set(conv, 50);
  this->floor_.set_fail(true);
  absl::StatusOr<uint64_t> seq = this->backend_.allocator().Next(conv);
  ASSERT_FALSE(seq.ok());
  EXPECT_EQ(seq.status().code(), absl::StatusCode::kUnavailable);
  this->floor_.set_fail(false);
  EXPECT_EQ(this->Next(conv), 50 + kGap + 1);
}

TYPED_TEST(SeqAllocatorContractTest, ConcurrentCallersNeverShareASeq) {
  const std::string conv = this->Conv("e");
  this->floor_.Set(conv, 7);  // every thread races to restore the counter first
  constexpr int kThreads = 4;
  constexpr int kPerThread = 200;
  std::vector<std::vector<uint64_t>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) got[t].push_back(this->Next(conv));
    });
  }
  for (auto& thread : threads) thread.join();
  std::set<uint64_t> all;
  for (const auto& seqs : got) {
    for (size_t i = 1; i < seqs.size(); ++i) EXPECT_LT(seqs[i - 1], seqs[i]);
    all.insert(seqs.begin(), seqs.end());
  }
  ASSERT_EQ(all.size(), static_cast<size_t>(kThreads * kPerThread));
  EXPECT_EQ(*all.begin(), 7 + kGap + 1);
  EXPECT_EQ(*all.rbegin(), 7 + kGap + kThreads * kPerThread);
}

}  // namespace
}  // namespace im::store
