#include "sdk/backoff.h"

#include <gtest/gtest.h>

#include <set>

namespace im::sdk {
namespace {

TEST(BackoffTest, CeilingDoublesUpToTheMaximum) {
  Backoff backoff(100, 1000, 42);
  const int64_t ceilings[] = {100, 200, 400, 800, 1000, 1000, 1000};
  for (int64_t ceiling : ceilings) {
    const int64_t delay = backoff.NextDelayMs();
    EXPECT_GE(delay, 0);
    EXPECT_LE(delay, ceiling);
  }
  backoff.Reset();
  EXPECT_LE(backoff.NextDelayMs(), 100);
}

TEST(BackoffTest, JitterSpreadsClients) {
  // Clients cut off together must not come back together: the delays of 50 clients differ.
  std::set<int64_t> delays;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Backoff backoff(10'000, 10'000, seed);
    delays.insert(backoff.NextDelayMs());
  }
  EXPECT_GT(delays.size(), 40u);
}

TEST(BackoffTest, AServersHintIsWaitedAtLeastAndSpreadOverOneHintMore) {
  std::set<int64_t> waits;
  for (uint64_t seed = 1; seed <= 50; ++seed) {
    Backoff backoff(100, 1000, seed);
    const int64_t wait = backoff.AfterHintMs(500);
    EXPECT_GE(wait, 500);
    EXPECT_LE(wait, 1000);
    waits.insert(wait);
  }
  EXPECT_GT(waits.size(), 40u) << "a refused crowd must not come back together";
}

}  // namespace
}  // namespace im::sdk
