#include "logic/group/unacked_records.h"

#include <gtest/gtest.h>

namespace im::logic {
namespace {

using std::chrono::milliseconds;

UnackedRecords::Entry RecordOf(uint64_t seq) {
  UnackedRecords::Entry entry;
  entry.record.mutable_message()->set_conv_id("g:1");
  entry.record.mutable_message()->set_seq(seq);
  return entry;
}

class UnackedRecordsTest : public ::testing::Test {
 protected:
  int64_t now_ = 1'000;
  UnackedRecords unacked_{milliseconds(2'000), [this] { return now_; }};
};

TEST_F(UnackedRecordsTest, AnAcknowledgedRecordIsTakenOnce) {
  const uint64_t id = unacked_.Add(RecordOf(1));
  std::optional<UnackedRecords::Entry> entry = unacked_.Take(id, /*acknowledged=*/true);
  ASSERT_TRUE(entry.has_value());
  EXPECT_EQ(entry->record.message().seq(), 1u);
  EXPECT_FALSE(unacked_.Take(id, true).has_value());
  EXPECT_EQ(unacked_.size(), 0u);
}

TEST_F(UnackedRecordsTest, NothingFallsBackBeforeItsTime) {
  unacked_.Add(RecordOf(1));
  now_ += 1'999;
  EXPECT_TRUE(unacked_.TakeStalled().empty());
  EXPECT_EQ(unacked_.size(), 1u);
}

TEST_F(UnackedRecordsTest, AStalledProducerFallsBackItsOldRecordsOldestFirst) {
  unacked_.Add(RecordOf(1));
  now_ += 500;
  unacked_.Add(RecordOf(2));
  now_ += 1'600;  // 2,100 ms since the last acknowledgement (none) and since record 1
  unacked_.Add(RecordOf(3));
  std::vector<UnackedRecords::Entry> stalled = unacked_.TakeStalled();
  ASSERT_EQ(stalled.size(), 1u);
  EXPECT_EQ(stalled[0].record.message().seq(), 1u);
  now_ += 500;
  stalled = unacked_.TakeStalled();
  ASSERT_EQ(stalled.size(), 1u);
  EXPECT_EQ(stalled[0].record.message().seq(), 2u);
  EXPECT_EQ(unacked_.size(), 1u);
}

TEST_F(UnackedRecordsTest, ASlowButAcknowledgingProducerKeepsItsRecords) {
  const uint64_t first = unacked_.Add(RecordOf(1));
  unacked_.Add(RecordOf(2));
  now_ += 1'500;
  ASSERT_TRUE(unacked_.Take(first, /*acknowledged=*/true).has_value());
  now_ += 1'500;  // record 2 waited 3 s, but Kafka acknowledged something 1.5 s ago
  EXPECT_TRUE(unacked_.TakeStalled().empty());
  now_ += 500;  // now nothing for 2 s
  EXPECT_EQ(unacked_.TakeStalled().size(), 1u);
}

TEST_F(UnackedRecordsTest, AFailedReportIsNoProgress) {
  const uint64_t first = unacked_.Add(RecordOf(1));
  unacked_.Add(RecordOf(2));
  now_ += 2'000;
  ASSERT_TRUE(unacked_.Take(first, /*acknowledged=*/false).has_value());
  EXPECT_EQ(unacked_.TakeStalled().size(), 1u);
}

TEST_F(UnackedRecordsTest, ARecordThatFellBackIsNotReportedAgain) {
  const uint64_t id = unacked_.Add(RecordOf(1));
  now_ += 2'000;
  ASSERT_EQ(unacked_.TakeStalled().size(), 1u);
  EXPECT_FALSE(unacked_.Take(id, /*acknowledged=*/true).has_value());
}

TEST_F(UnackedRecordsTest, TakeAllEmptiesInOrder) {
  unacked_.Add(RecordOf(1));
  unacked_.Add(RecordOf(2));
  std::vector<UnackedRecords::Entry> all = unacked_.TakeAll();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].record.message().seq(), 1u);
  EXPECT_EQ(all[1].record.message().seq(), 2u);
  EXPECT_EQ(unacked_.size(), 0u);
}

}  // namespace
}  // namespace im::logic
