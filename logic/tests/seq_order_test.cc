#include "logic/delivery/seq_order.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace im::logic {
namespace {

class SeqOrderTest : public ::testing::Test {
 protected:
  SeqOrder::Deliver Record(const std::string& what) {
    return [this, what] { delivered_.push_back(what); };
  }

  int64_t now_ms_ = 1'000;
  SeqOrder order_{5'000, [this] { return now_ms_; }};
  std::vector<std::string> delivered_;
};

TEST_F(SeqOrderTest, ALaterSeqStoredFirstWaitsForTheEarlierOne) {
  order_.Expect("g:a", 5);
  order_.Expect("g:a", 6);
  order_.Expect("g:a", 7);
  order_.Complete("g:a", 7, Record("7"));
  order_.Complete("g:a", 6, Record("6"));
  EXPECT_TRUE(delivered_.empty()) << "5 is still being written";
  order_.Complete("g:a", 5, Record("5"));
  EXPECT_EQ(delivered_, (std::vector<std::string>{"5", "6", "7"}));
  EXPECT_EQ(order_.conversations(), 0u) << "nothing kept once delivered";
}

TEST_F(SeqOrderTest, ASeqNotStoredReleasesTheOnesAfterIt) {
  order_.Expect("s:a:b", 1);
  order_.Expect("s:a:b", 2);
  order_.Complete("s:a:b", 2, Record("2"));
  order_.Complete("s:a:b", 1, nullptr);  // its write failed
  EXPECT_EQ(delivered_, (std::vector<std::string>{"2"}));
}

TEST_F(SeqOrderTest, ConversationsDoNotWaitForEachOther) {
  order_.Expect("g:a", 1);
  order_.Expect("g:b", 1);
  order_.Complete("g:b", 1, Record("b1"));
  EXPECT_EQ(delivered_, (std::vector<std::string>{"b1"}));
  order_.Complete("g:a", 1, Record("a1"));
  EXPECT_EQ(delivered_, (std::vector<std::string>{"b1", "a1"}));
}

TEST_F(SeqOrderTest, ASeqThisNodeNeverExpectedIsDeliveredAtOnce) {
  order_.Expect("g:a", 3);
  order_.Complete("g:a", 9, Record("9"));  // e.g. taken before a restart of this object
  EXPECT_EQ(delivered_, (std::vector<std::string>{"9"}));
}

TEST_F(SeqOrderTest, ASeqThatNeverCompletesIsGivenUpOnAfterMaxHold) {
  order_.Expect("g:a", 1);
  order_.Expect("g:a", 2);
  order_.Complete("g:a", 2, Record("2"));
  EXPECT_TRUE(delivered_.empty());
  now_ms_ += 5'001;
  order_.Expect("g:a", 3);
  order_.Complete("g:a", 3, Record("3"));
  EXPECT_EQ(delivered_, (std::vector<std::string>{"2", "3"}));
  EXPECT_EQ(order_.given_up(), 1u);
}

}  // namespace
}  // namespace im::logic
