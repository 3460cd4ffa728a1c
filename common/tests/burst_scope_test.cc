#include "common/burst_scope.h"

#include <gtest/gtest.h>

#include <string>
#include <thread>

namespace im::common {
namespace {

TEST(BurstScopeTest, WithoutAScopeTheCallerWakesItself) {
  EXPECT_FALSE(BurstScope::Defer(this, [] {}));
}

TEST(BurstScopeTest, EachKeyWakesOnceWhenTheInnermostScopeCloses) {
  std::string woken;
  {
    BurstScope outer;
    EXPECT_TRUE(BurstScope::Defer(&woken, [&] { woken += "o"; }));
    {
      BurstScope inner;
      int a = 0;
      int b = 0;
      EXPECT_TRUE(BurstScope::Defer(&a, [&] { woken += "a"; }));
      EXPECT_TRUE(BurstScope::Defer(&a, [&] { woken += "A"; }));  // already deferred
      EXPECT_TRUE(BurstScope::Defer(&b, [&] { woken += "b"; }));
      EXPECT_EQ(woken, "");
    }
    EXPECT_EQ(woken, "ab") << "in the order first deferred, each key once";
  }
  EXPECT_EQ(woken, "abo");
}

TEST(BurstScopeTest, AScopeIsPerThread) {
  BurstScope scope;
  bool deferred_elsewhere = true;
  std::thread other([&] { deferred_elsewhere = BurstScope::Defer(&scope, [] {}); });
  other.join();
  EXPECT_FALSE(deferred_elsewhere);
}

}  // namespace
}  // namespace im::common
