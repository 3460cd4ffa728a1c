#include "sdk/outbox.h"

#include <gtest/gtest.h>

namespace im::sdk {
namespace {

PendingSend Send(const std::string& id, int64_t deadline_ms = 0) {
  PendingSend send;
  send.client_msg_id = id;
  send.conv_id = "s:a:b";
  send.body = "body of " + id;
  send.deadline_ms = deadline_ms;
  return send;
}

std::vector<std::string> Ids(const std::vector<PendingSend>& sends) {
  std::vector<std::string> ids;
  for (const PendingSend& send : sends) ids.push_back(send.client_msg_id);
  return ids;
}

TEST(OutboxTest, TakesOldestFirstWithinTheWindow) {
  Outbox outbox;
  ASSERT_TRUE(outbox.Add(Send("a")));
  ASSERT_TRUE(outbox.Add(Send("b")));
  ASSERT_TRUE(outbox.Add(Send("c")));
  EXPECT_FALSE(outbox.Add(Send("b")));
  EXPECT_EQ(Ids(outbox.TakeReady(0, 2)), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(outbox.in_flight_count(), 2u);
  EXPECT_EQ(Ids(outbox.TakeReady(0, 5)), (std::vector<std::string>{"c"}));
  EXPECT_TRUE(outbox.TakeReady(0, 5).empty());
}

TEST(OutboxTest, RemoveAndRequeue) {
  Outbox outbox;
  outbox.Add(Send("a"));
  outbox.Add(Send("b"));
  outbox.TakeReady(0, 2);
  ASSERT_TRUE(outbox.Remove("a"));
  EXPECT_FALSE(outbox.Remove("a"));
  outbox.Requeue("b", 100);
  EXPECT_EQ(outbox.in_flight_count(), 0u);
  EXPECT_TRUE(outbox.TakeReady(99, 5).empty());
  EXPECT_EQ(Ids(outbox.TakeReady(100, 5)), (std::vector<std::string>{"b"}));
}

TEST(OutboxTest, RequeueAllAfterADisconnectKeepsOrder) {
  Outbox outbox;
  outbox.Add(Send("a"));
  outbox.Add(Send("b"));
  outbox.TakeReady(0, 1);
  outbox.RequeueAll();
  EXPECT_EQ(outbox.in_flight_count(), 0u);
  EXPECT_EQ(Ids(outbox.TakeReady(0, 5)), (std::vector<std::string>{"a", "b"}));
}

TEST(OutboxTest, ExpiresOnlyQueuedSendsPastTheirDeadline) {
  Outbox outbox;
  outbox.Add(Send("on-wire", 10));
  outbox.Add(Send("queued", 10));
  outbox.Add(Send("forever", 0));
  outbox.TakeReady(0, 1);  // on-wire: its answer decides
  EXPECT_TRUE(outbox.TakeExpired(9).empty());
  EXPECT_EQ(Ids(outbox.TakeExpired(10)), (std::vector<std::string>{"queued"}));
  EXPECT_EQ(outbox.size(), 2u);
  EXPECT_TRUE(outbox.in_flight("on-wire"));
}

}  // namespace
}  // namespace im::sdk
