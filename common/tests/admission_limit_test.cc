#include "common/admission_limit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace im::common {
namespace {

TEST(AdmissionLimitTest, AdmitsUpToTheLimitAndAgainOnceASlotIsGivenBack) {
  AdmissionLimit limit(2);
  std::optional<AdmissionLimit::Slot> first = limit.TryAdmit();
  std::optional<AdmissionLimit::Slot> second = limit.TryAdmit();
  ASSERT_TRUE(first && second);
  EXPECT_FALSE(limit.TryAdmit()) << "a third past a limit of two";
  EXPECT_EQ(limit.in_flight(), 2u);
  first.reset();
  EXPECT_EQ(limit.in_flight(), 1u);
  EXPECT_TRUE(limit.TryAdmit());
}

TEST(AdmissionLimitTest, AMovedSlotIsGivenBackOnceAndAssigningReleasesTheOldOne) {
  AdmissionLimit limit(2);
  std::optional<AdmissionLimit::Slot> a = limit.TryAdmit();
  std::optional<AdmissionLimit::Slot> b = limit.TryAdmit();
  ASSERT_TRUE(a && b);
  {
    AdmissionLimit::Slot moved(std::move(*a));
    a.reset();  // the moved-from slot gives nothing back
    EXPECT_EQ(limit.in_flight(), 2u);
    *b = std::move(moved);  // b's own place is given back; it now holds moved's
    EXPECT_EQ(limit.in_flight(), 1u);
  }
  EXPECT_EQ(limit.in_flight(), 1u);
  b.reset();
  EXPECT_EQ(limit.in_flight(), 0u);
}

TEST(AdmissionLimitTest, ASlotMayOutliveItsLimit) {
  std::optional<AdmissionLimit::Slot> slot;
  {
    AdmissionLimit limit(1);
    slot = limit.TryAdmit();
    ASSERT_TRUE(slot);
  }
  slot.reset();  // no use after free under ASan
}

TEST(AdmissionLimitTest, ThreadsRacingNeverHoldMoreThanTheLimit) {
  constexpr uint32_t kLimit = 3;
  AdmissionLimit limit(kLimit);
  std::atomic<uint32_t> holding{0};
  std::atomic<uint32_t> most{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 20'000; ++i) {
        std::optional<AdmissionLimit::Slot> slot = limit.TryAdmit();
        if (!slot) continue;
        const uint32_t now = holding.fetch_add(1) + 1;
        uint32_t seen = most.load();
        while (now > seen && !most.compare_exchange_weak(seen, now)) {
        }
        holding.fetch_sub(1);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_LE(most.load(), kLimit);
  EXPECT_EQ(limit.in_flight(), 0u);
}

}  // namespace
}  // namespace im::common
