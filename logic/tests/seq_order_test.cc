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

// A send numbered on the executor (its conversation's counter restored from MySQL) while the loop
// numbers the next ones: the loop's seqs wait for the executor's to be expected.
TEST_F(SeqOrderTest, AHeldConversationDeliversNothingUntilTheHeldSeqIsExpected) {
  SeqOrder::Hold hold = order_.HoldConversation("g:a");
  order_.Expect("g:a", 2);  // the loop took 2 while the executor is taking 1
  order_.Complete("g:a", 2, Record("2"));
  EXPECT_TRUE(delivered_.empty()) << "2 overtook the seq still being taken";
  order_.Expect("g:a", 1);
  hold.Release();
  EXPECT_TRUE(delivered_.empty()) << "1 is still being written";
  order_.Complete("g:a", 1, Record("1"));
  EXPECT_EQ(delivered_, (std::vector<std::string>{"1", "2"}));
  EXPECT_EQ(order_.conversations(), 0u);
}

TEST_F(SeqOrderTest, AHoldThatTookNoSeqReleasesWhatWaited) {
  {
    SeqOrder::Hold refused = order_.HoldConversation("g:a");  // e.g. the executor was full
    order_.Expect("g:a", 7);
    order_.Complete("g:a", 7, Record("7"));
    EXPECT_TRUE(delivered_.empty());
  }
  EXPECT_EQ(delivered_, (std::vector<std::string>{"7"}));
  EXPECT_EQ(order_.conversations(), 0u);
}

TEST_F(SeqOrderTest, HoldsCountAndOtherConversationsGoOn) {
  SeqOrder::Hold first = order_.HoldConversation("g:a");
  SeqOrder::Hold second = order_.HoldConversation("g:a");
  order_.Expect("g:a", 3);
  order_.Complete("g:a", 3, Record("a3"));
  order_.Expect("g:b", 1);
  order_.Complete("g:b", 1, Record("b1"));
  first.Release();
  EXPECT_EQ(delivered_, (std::vector<std::string>{"b1"})) << "one hold is still there";
  SeqOrder::Hold moved = std::move(second);
  second.Release();  // moved from: holds nothing
  EXPECT_EQ(delivered_, (std::vector<std::string>{"b1"}));
  moved.Release();
  EXPECT_EQ(delivered_, (std::vector<std::string>{"b1", "a3"}));
}

TEST_F(SeqOrderTest, AHoldNeverReleasedIsGivenUpOnAfterMaxHold) {
  SeqOrder::Hold stuck = order_.HoldConversation("g:a");
  order_.Expect("g:a", 4);
  order_.Complete("g:a", 4, Record("4"));
  EXPECT_TRUE(delivered_.empty());
  now_ms_ += 5'001;
  order_.Expect("g:a", 5);
  order_.Complete("g:a", 5, Record("5"));
  EXPECT_EQ(delivered_, (std::vector<std::string>{"4", "5"}));
  EXPECT_EQ(order_.given_up(), 1u);
  stuck.Release();  // late: changes nothing
  EXPECT_EQ(order_.conversations(), 0u);
}

}  // namespace
}  // namespace im::logic
