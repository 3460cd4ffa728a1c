#include "sdk/wire_conversions.h"

#include <gtest/gtest.h>

namespace im::sdk {
namespace {

TEST(WireConversionsTest, PresenceKeepsEveryField) {
  im::v1::Presence online;
  online.set_uid("bob");
  online.set_online(true);
  online.add_devices("phone-1");
  online.add_devices("tablet");
  online.add_platforms("android");
  online.add_platforms("ios");
  EXPECT_EQ(PresenceOf(online),
            (Presence{"bob", true, {"phone-1", "tablet"}, 0, {"android", "ios"}}));

  // A server that names no platforms (older than them): one empty platform per device.
  online.clear_platforms();
  EXPECT_EQ(PresenceOf(online), (Presence{"bob", true, {"phone-1", "tablet"}, 0, {"", ""}}));

  im::v1::Presence offline;
  offline.set_uid("carol");
  offline.set_last_seen_ms(1'700'000'000'123);
  EXPECT_EQ(PresenceOf(offline), (Presence{"carol", false, {}, 1'700'000'000'123, {}}));
}

}  // namespace
}  // namespace im::sdk
