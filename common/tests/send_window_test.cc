#include "common/send_window.h"

#include <gtest/gtest.h>

namespace im::common {
namespace {

TEST(SendWindowTest, StartsAtTheMaximumAndNeverPassesIt) {
  SendWindow window(8);
  EXPECT_EQ(window.size(), 8u);
  for (int i = 0; i < 100; ++i) window.OnAcked();
  EXPECT_EQ(window.size(), 8u);
}

TEST(SendWindowTest, ARefusalHalvesItOncePerBurst) {
  SendWindow window(64);
  window.OnRefused(1'000, 500);
  EXPECT_EQ(window.size(), 32u);
  window.OnRefused(1'200, 500);  // the same burst: sent before the first refusal came back
  EXPECT_EQ(window.size(), 32u);
  window.OnRefused(1'500, 500);
  EXPECT_EQ(window.size(), 16u);
  for (int64_t t = 2'000; t < 20'000; t += 500) window.OnRefused(t, 500);
  EXPECT_EQ(window.size(), 1u) << "never below one";
}

TEST(SendWindowTest, EachWindowOfAcksWidensItByOne) {
  SendWindow window(8);
  window.OnRefused(0, 100);
  window.OnRefused(100, 100);
  window.OnRefused(200, 100);
  ASSERT_EQ(window.size(), 1u);
  window.OnAcked();
  EXPECT_EQ(window.size(), 2u);
  window.OnAcked();
  EXPECT_EQ(window.size(), 2u);
  window.OnAcked();
  EXPECT_EQ(window.size(), 3u);
  for (int i = 0; i < 3 + 4 + 5 + 6 + 7; ++i) window.OnAcked();
  EXPECT_EQ(window.size(), 8u);
}

}  // namespace
}  // namespace im::common
