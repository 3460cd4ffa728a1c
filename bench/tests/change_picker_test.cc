#include "bench/change_picker.h"

#include <gtest/gtest.h>

#include <map>

namespace im::bench {
namespace {

// How many of `n` messages the picker changes, by kind (TEXT: left as they are).
std::map<im::v1::MessageType, int> Pick(ChangePicker picker, int n) {
  std::map<im::v1::MessageType, int> picked;
  for (int i = 0; i < n; ++i) ++picked[picker.Next().value_or(im::v1::TEXT)];
  return picked;
}

TEST(ChangePickerTest, NoSharesChangeNothing) {
  EXPECT_EQ(Pick(ChangePicker(), 100)[im::v1::TEXT], 100);
  EXPECT_EQ(Pick(ChangePicker(0, 0), 100)[im::v1::TEXT], 100);
}

TEST(ChangePickerTest, SharesArePickedExactlyAndNeverBoth) {
  std::map<im::v1::MessageType, int> picked = Pick(ChangePicker(0.1, 0.25), 100);
  EXPECT_EQ(picked[im::v1::RECALL], 10);  // ten shares of 0.1 make a whole despite rounding
  EXPECT_EQ(picked[im::v1::EDIT], 25);    // the 2nd, 6th, 10th (moved to the 11th), ...
  EXPECT_EQ(picked[im::v1::TEXT], 65);
}

TEST(ChangePickerTest, EditsRoundToTheNearestWhole) {
  EXPECT_EQ(Pick(ChangePicker(0, 0.1), 4)[im::v1::EDIT], 0);
  EXPECT_EQ(Pick(ChangePicker(0, 0.1), 5)[im::v1::EDIT], 1);
  EXPECT_EQ(Pick(ChangePicker(0, 0.1), 30)[im::v1::EDIT], 3);
  EXPECT_EQ(Pick(ChangePicker(0.1, 0), 9)[im::v1::RECALL], 0);
}

TEST(ChangePickerTest, EqualSharesTakeTurns) {
  std::map<im::v1::MessageType, int> picked = Pick(ChangePicker(0.1, 0.1), 30);
  EXPECT_EQ(picked[im::v1::RECALL], 3);
  EXPECT_EQ(picked[im::v1::EDIT], 3);
  ChangePicker picker(0.5, 0.5);
  for (int round = 0; round < 5; ++round) {
    EXPECT_EQ(picker.Next(), im::v1::EDIT);
    EXPECT_EQ(picker.Next(), im::v1::RECALL);
  }
  EXPECT_EQ(Pick(ChangePicker(1, 0), 7)[im::v1::RECALL], 7);
  EXPECT_EQ(Pick(ChangePicker(0, 1), 7)[im::v1::EDIT], 7);
}

TEST(ChangePickerTest, PicksAreSpreadEvenly) {
  ChangePicker picker(0.25, 0);
  for (int round = 0; round < 3; ++round) {
    EXPECT_FALSE(picker.Next());
    EXPECT_FALSE(picker.Next());
    EXPECT_FALSE(picker.Next());
    EXPECT_EQ(picker.Next(), im::v1::RECALL);
  }
}

}  // namespace
}  // namespace im::bench
