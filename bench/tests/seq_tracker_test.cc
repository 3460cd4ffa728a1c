#include "bench/seq_tracker.h"

#include <gtest/gtest.h>

namespace im::bench {
namespace {

using Arrival = SeqTracker::Arrival;

TEST(SeqTrackerTest, InOrderPushesAreNewAndContiguous) {
  SeqTracker t;
  for (uint64_t s = 1; s <= 10; ++s) EXPECT_EQ(t.OnPush(s, 100), Arrival::kNew);
  EXPECT_EQ(t.Contiguous(), 10u);
  EXPECT_EQ(t.overtaken(), 0u);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.duplicates(), 0u);
}

TEST(SeqTrackerTest, ASeqPushedTwiceIsADuplicate) {
  SeqTracker t;
  EXPECT_EQ(t.OnPush(1, 0), Arrival::kNew);
  EXPECT_EQ(t.OnPush(1, 5), Arrival::kDuplicate);
  EXPECT_EQ(t.duplicates(), 1u);
}

TEST(SeqTrackerTest, SyncedOrOwnSeqsAreHeldWithoutCountingAPushAsDuplicate) {
  SeqTracker t;
  EXPECT_EQ(t.OnHeld(1, 0), Arrival::kNew);  // own send
  EXPECT_EQ(t.OnPush(2, 1), Arrival::kNew);
  EXPECT_EQ(t.OnHeld(2, 2), Arrival::kAlreadyHeld);  // a sync overlapping the push
  EXPECT_EQ(t.OnHeld(3, 2), Arrival::kNew);          // synced first ...
  EXPECT_EQ(t.OnPush(3, 3), Arrival::kAlreadyHeld);  // ... then pushed: not a duplicate
  EXPECT_EQ(t.duplicates(), 0u);
  EXPECT_EQ(t.Contiguous(), 3u);
}

TEST(SeqTrackerTest, OvertakenWithinTheWindowIsNotReordered) {
  SeqTracker t(/*reorder_window_ms=*/1000);
  EXPECT_EQ(t.OnPush(2, 100), Arrival::kNew);
  EXPECT_EQ(t.Contiguous(), 0u);  // held back behind the gap
  EXPECT_EQ(t.OnPush(1, 150), Arrival::kNew);
  EXPECT_EQ(t.Contiguous(), 2u);
  EXPECT_EQ(t.overtaken(), 1u);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.max_depth(), 1u);
  EXPECT_EQ(t.max_wait_ms(), 50u);
}

TEST(SeqTrackerTest, OvertakenLongerThanTheWindowIsReordered) {
  SeqTracker t(/*reorder_window_ms=*/1000);
  EXPECT_EQ(t.OnPush(3, 100), Arrival::kNew);
  EXPECT_EQ(t.OnPush(5, 200), Arrival::kNew);
  // Seq 1 waited since seq 3 arrived (the earliest higher one): 1,500 ms.
  EXPECT_EQ(t.OnPush(1, 1600), Arrival::kNew);
  EXPECT_EQ(t.reordered(), 1u);
  EXPECT_EQ(t.max_wait_ms(), 1500u);
  EXPECT_EQ(t.max_depth(), 4u);
  // Seq 4 is below 5 but came 900 ms after it: overtaken, not reordered.
  EXPECT_EQ(t.OnPush(4, 1100), Arrival::kNew);
  EXPECT_EQ(t.reordered(), 1u);
  EXPECT_EQ(t.overtaken(), 2u);
}

TEST(SeqTrackerTest, ADeviceHoldingBySeqShowsALateArrivalInOrder) {
  SeqTracker t(/*reorder_window_ms=*/1000, SeqTracker::Ordering::kHoldsBySeq);
  EXPECT_EQ(t.OnPush(3, 100), Arrival::kNew);
  EXPECT_EQ(t.Contiguous(), 0u);  // seq 3 held back behind the gap
  // Seq 1 and 2 were written late (11.5 s, within the hole grace): the device still waited.
  EXPECT_EQ(t.OnPush(1, 11'600), Arrival::kNew);
  EXPECT_EQ(t.OnPush(2, 11'700), Arrival::kNew);
  EXPECT_EQ(t.Contiguous(), 3u);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.waited_past_window(), 2u);
  EXPECT_EQ(t.max_wait_ms(), 11'600u);
}

TEST(SeqTrackerTest, AMessageForASeqPassedAsAHoleIsReorderedWhicheverWayItComes) {
  for (const auto ordering :
       {SeqTracker::Ordering::kHoldsBySeq, SeqTracker::Ordering::kShowsOnArrival}) {
    SeqTracker t(/*reorder_window_ms=*/1000, ordering);
    t.OnPush(1, 0);
    t.OnPush(4, 10);
    t.HoldRange(2, 3, 20);  // Sync: 2..3 will never come, the device shows 4
    EXPECT_EQ(t.Contiguous(), 4u);
    EXPECT_EQ(t.OnPush(2, 30), Arrival::kAfterItsHole);  // it came after all
    EXPECT_EQ(t.OnHeld(3, 40), Arrival::kAfterItsHole);  // or a later sync served it
    EXPECT_EQ(t.reordered(), 2u);
    EXPECT_EQ(t.duplicates(), 0u);
  }
}

TEST(SeqTrackerTest, AHoleReportedOverHeldSeqsKeepsThem) {
  SeqTracker t(/*reorder_window_ms=*/1000, SeqTracker::Ordering::kHoldsBySeq);
  t.OnPush(2, 0);
  t.HoldRange(1, 2, 5);  // an overlapping report: seq 2 came, only seq 1 is a hole
  EXPECT_EQ(t.OnPush(2, 6), Arrival::kDuplicate);
  EXPECT_EQ(t.reordered(), 0u);
  EXPECT_EQ(t.HeldAtMs(2), 0u);
}

TEST(SeqTrackerTest, HolesCountAsHeldAndBadSeqsAreRefused) {
  SeqTracker t;
  t.OnPush(1, 0);
  t.HoldRange(2, 4, 0);
  t.OnPush(5, 0);
  EXPECT_EQ(t.Contiguous(), 5u);
  EXPECT_EQ(t.OnPush(0, 0), Arrival::kInvalid);
  EXPECT_EQ(t.OnPush(uint64_t{1} << 40, 0), Arrival::kInvalid);
  EXPECT_FALSE(t.Has(6));
  EXPECT_TRUE(t.Has(3));
}

TEST(SeqTrackerTest, AGapIsASeqHeldAboveAMissingOneHoweverItCame) {
  SeqTracker t;
  EXPECT_FALSE(t.HasGap());
  t.OnPush(1, 0);
  EXPECT_FALSE(t.HasGap());
  t.OnHeld(3, 0);  // an own acknowledged send above the peer's seq 2, not come yet
  EXPECT_TRUE(t.HasGap());
  t.OnPush(2, 0);
  EXPECT_FALSE(t.HasGap());
  t.HoldRange(5, 6, 0);  // a hole the cluster reported, above seq 4
  EXPECT_TRUE(t.HasGap());
  t.OnHeld(4, 0);
  EXPECT_FALSE(t.HasGap());
}

TEST(SeqTrackerTest, RemembersWhenEachSeqCameFirst) {
  SeqTracker t;
  t.OnHeld(1, 10);
  t.OnPush(1, 20);  // a push of a seq synced before keeps the sync's time
  t.OnPush(2, 30);
  EXPECT_EQ(t.HeldAtMs(1), 10u);
  EXPECT_EQ(t.HeldAtMs(2), 30u);
}

}  // namespace
}  // namespace im::bench
