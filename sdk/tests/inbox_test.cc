#include "sdk/inbox.h"

#include <gtest/gtest.h>

#include <vector>

namespace im::sdk {
namespace {

constexpr int64_t kGapWaitMs = 300;

Message At(const std::string& conv_id, uint64_t seq) {
  Message message;
  message.conv_id = conv_id;
  message.seq = seq;
  return message;
}

Conversation View(const std::string& conv_id, uint64_t delivered, uint64_t max_seq) {
  Conversation view;
  view.conv_id = conv_id;
  view.delivered_seq = delivered;
  view.max_seq = max_seq;
  return view;
}

std::vector<uint64_t> Seqs(const std::optional<Inbox::Delivery>& delivery) {
  std::vector<uint64_t> seqs;
  if (delivery) {
    for (const Message& message : delivery->messages) seqs.push_back(message.seq);
  }
  return seqs;
}

TEST(InboxTest, HoldsPushesUntilTheLoginListTellsWhereAConversationStarts) {
  Inbox inbox(kGapWaitMs);
  // A fresh device: the server has delivered 40 of 42 to the user's other devices.
  EXPECT_FALSE(inbox.Receive("s:a:b", {At("s:a:b", 42)}, 0));
  std::vector<Inbox::Delivery> ready = inbox.Bind({View("s:a:b", 40, 42)}, 0);
  EXPECT_TRUE(ready.empty());  // 41 is missing
  std::vector<Inbox::SyncRequest> syncs = inbox.TakeDueSyncs(0);
  ASSERT_EQ(syncs.size(), 1u);
  EXPECT_EQ(syncs[0].conv_id, "s:a:b");
  EXPECT_EQ(syncs[0].after_seq, 40u);
  Inbox::SyncPage page;
  page.messages = {At("s:a:b", 41), At("s:a:b", 42)};
  page.max_seq = 42;
  EXPECT_EQ(Seqs(inbox.OnSynced("s:a:b", page, 10)), (std::vector<uint64_t>{41, 42}));
  EXPECT_TRUE(inbox.TakeDueSyncs(1000).empty());
}

TEST(InboxTest, ConversationUnknownToTheListStartsAtZero) {
  Inbox inbox(kGapWaitMs);
  EXPECT_FALSE(inbox.Receive("s:a:c", {At("s:a:c", 1)}, 0));
  std::vector<Inbox::Delivery> ready = inbox.Bind({}, 0);
  ASSERT_EQ(ready.size(), 1u);
  EXPECT_EQ(ready[0].messages.at(0).seq, 1u);
  EXPECT_EQ(Seqs(inbox.Receive("s:a:d", {At("s:a:d", 1)}, 0)), (std::vector<uint64_t>{1}));
}

TEST(InboxTest, GapIsSyncedOnlyAfterTheGapWait) {
  Inbox inbox(kGapWaitMs);
  inbox.Restore({{"s:a:b", 5}});
  inbox.Bind({View("s:a:b", 5, 5)}, 0);
  EXPECT_TRUE(inbox.TakeDueSyncs(0).empty());
  EXPECT_FALSE(inbox.Receive("s:a:b", {At("s:a:b", 7)}, 1000));
  EXPECT_TRUE(inbox.TakeDueSyncs(1000 + kGapWaitMs - 1).empty());
  // The missing push arrives in time: no sync.
  EXPECT_EQ(Seqs(inbox.Receive("s:a:b", {At("s:a:b", 6)}, 1100)), (std::vector<uint64_t>{6, 7}));
  EXPECT_TRUE(inbox.TakeDueSyncs(5000).empty());
  // Now one that never comes.
  EXPECT_FALSE(inbox.Receive("s:a:b", {At("s:a:b", 9)}, 6000));
  std::vector<Inbox::SyncRequest> syncs = inbox.TakeDueSyncs(6000 + kGapWaitMs);
  ASSERT_EQ(syncs.size(), 1u);
  EXPECT_EQ(syncs[0].after_seq, 7u);
  EXPECT_TRUE(inbox.TakeDueSyncs(9000).empty());  // one sync at a time
}

TEST(InboxTest, SyncPagesContinueAndHolesAreSkipped) {
  Inbox inbox(kGapWaitMs);
  inbox.Bind({View("g:x", 0, 10)}, 0);
  std::vector<Inbox::SyncRequest> syncs = inbox.TakeDueSyncs(0);
  ASSERT_EQ(syncs.size(), 1u);
  Inbox::SyncPage page;
  page.messages = {At("g:x", 1), At("g:x", 4)};
  page.holes = {{2, 3}};
  page.has_more = true;
  page.max_seq = 10;
  EXPECT_EQ(Seqs(inbox.OnSynced("g:x", page, 0)), (std::vector<uint64_t>{1, 4}));
  syncs = inbox.TakeDueSyncs(0);
  ASSERT_EQ(syncs.size(), 1u);
  EXPECT_EQ(syncs[0].after_seq, 4u);
  // A page without progress (the server waits out a write in progress) is retried later.
  EXPECT_FALSE(inbox.OnSynced("g:x", Inbox::SyncPage{{}, {}, true, 10}, 0));
  EXPECT_TRUE(inbox.TakeDueSyncs(kGapWaitMs - 1).empty());
  EXPECT_EQ(inbox.TakeDueSyncs(kGapWaitMs).size(), 1u);
}

TEST(InboxTest, NotMemberStopsSyncing) {
  Inbox inbox(kGapWaitMs);
  inbox.Bind({View("g:x", 0, 3)}, 0);
  ASSERT_EQ(inbox.TakeDueSyncs(0).size(), 1u);
  inbox.OnSyncFailed("g:x", /*retry=*/false, 0);
  EXPECT_TRUE(inbox.TakeDueSyncs(100'000).empty());
}

// A sync the cluster refused for overload is tried again when its hint says, not before; without
// a hint, after the inbox's own pause.
TEST(InboxTest, ARefusedSyncWaitsForItsRetryHint) {
  Inbox inbox(kGapWaitMs);
  inbox.Bind({View("g:x", 0, 3), View("g:y", 0, 3)}, 0);
  ASSERT_EQ(inbox.TakeDueSyncs(0).size(), 2u);
  inbox.OnSyncFailed("g:x", /*retry=*/true, 0, /*retry_in_ms=*/5000);
  inbox.OnSyncFailed("g:y", /*retry=*/true, 0);
  EXPECT_TRUE(inbox.TakeDueSyncs(4 * kGapWaitMs - 1).empty());
  std::vector<Inbox::SyncRequest> due = inbox.TakeDueSyncs(4 * kGapWaitMs);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].conv_id, "g:y");
  EXPECT_TRUE(inbox.TakeDueSyncs(4999).empty());
  due = inbox.TakeDueSyncs(5000);
  ASSERT_EQ(due.size(), 1u);
  EXPECT_EQ(due[0].conv_id, "g:x");
}

TEST(InboxTest, AbortedSyncIsTakenUpAgain) {
  Inbox inbox(kGapWaitMs);
  inbox.Bind({View("g:x", 0, 3)}, 0);
  ASSERT_EQ(inbox.TakeDueSyncs(0).size(), 1u);
  inbox.AbortSyncs();
  EXPECT_EQ(inbox.TakeDueSyncs(0).size(), 1u);
}

TEST(InboxTest, MovedCursorsAreReportedOnce) {
  Inbox inbox(kGapWaitMs);
  inbox.Restore({{"s:a:b", 2}});
  inbox.Bind({}, 0);
  EXPECT_TRUE(inbox.TakeMovedCursors().empty());
  inbox.Receive("s:a:b", {At("s:a:b", 3)}, 0);
  EXPECT_EQ(inbox.TakeMovedCursors(), (std::map<std::string, uint64_t>{{"s:a:b", 3}}));
  EXPECT_TRUE(inbox.TakeMovedCursors().empty());
  EXPECT_EQ(inbox.Cursors(), (std::map<std::string, uint64_t>{{"s:a:b", 3}}));
}

}  // namespace
}  // namespace im::sdk
