#include "sdk/wire_conversions.h"

#include <gtest/gtest.h>

namespace im::sdk {
namespace {

TEST(WireConversionsTest, PresenceKeepsEveryField) {
  im::v1::Presence online;
  online.set_uid("bob");
  online.set_online(true);
  online.add_devices("android");
  online.add_devices("ios");
  EXPECT_EQ(PresenceOf(online), (Presence{"bob", true, {"android", "ios"}, 0}));

  im::v1::Presence offline;
  offline.set_uid("carol");
  offline.set_last_seen_ms(1'700'000'000'123);
  EXPECT_EQ(PresenceOf(offline), (Presence{"carol", false, {}, 1'700'000'000'123}));
}

}  // namespace
}  // namespace im::sdk
