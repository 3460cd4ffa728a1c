// The C API's own checks, on a client that never connects (its calls with a server are in the
// loop tests, against a fake gateway, and in tests/e2e against the real one).
#include "sdk/im_client.h"

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace im::sdk {
namespace {

constexpr int kCancelled = 1;
constexpr int kInvalidArgument = 3;

// A watch's answer: its code and the thread it came on.
struct WatchAnswer {
  std::mutex mutex;
  std::condition_variable done;
  int code = -1;
  std::thread::id thread;

  static void On(void* self, int code, const im_presence*, size_t, const char* const*, size_t) {
    auto* answer = static_cast<WatchAnswer*>(self);
    std::lock_guard<std::mutex> lock(answer->mutex);
    answer->code = code;
    answer->thread = std::this_thread::get_id();
    answer->done.notify_all();
  }
  int Wait() {
    std::unique_lock<std::mutex> lock(mutex);
    EXPECT_TRUE(done.wait_for(lock, std::chrono::seconds(10), [this] { return code != -1; }));
    return code;
  }
};

using ClientHandle = std::unique_ptr<im_client, void (*)(im_client*)>;

// A client that is never started: its calls stay on this process.
ClientHandle Idle() {
  const char* gateways[] = {"127.0.0.1:1"};
  im_client_config config = {gateways, 1, "token", nullptr, nullptr, 0};
  im_client_callbacks callbacks = {};
  return ClientHandle(im_client_create(&config, &callbacks, nullptr, 0), im_client_destroy);
}

TEST(ImClientTest, WatchPresenceRefusesBadArgumentsOnTheCallingThread) {
  ClientHandle client = Idle();
  ASSERT_NE(client, nullptr);
  const char* uids[] = {"bob", nullptr};

  WatchAnswer no_client;
  im_client_watch_presence(nullptr, uids, 1, WatchAnswer::On, &no_client);
  EXPECT_EQ(no_client.code, kInvalidArgument);
  EXPECT_EQ(no_client.thread, std::this_thread::get_id());
  WatchAnswer no_list;
  im_client_watch_presence(client.get(), nullptr, 2, WatchAnswer::On, &no_list);
  EXPECT_EQ(no_list.code, kInvalidArgument);
  WatchAnswer null_uid;
  im_client_watch_presence(client.get(), uids, 2, WatchAnswer::On, &null_uid);
  EXPECT_EQ(null_uid.code, kInvalidArgument);
  EXPECT_EQ(null_uid.thread, std::this_thread::get_id());
  // No `done`: nothing to answer, and nothing breaks.
  im_client_watch_presence(client.get(), uids, 2, nullptr, nullptr);
  im_client_watch_presence(nullptr, nullptr, 0, nullptr, nullptr);
  im_client_set_on_presence(nullptr, nullptr, nullptr);
}

TEST(ImClientTest, AWatchReplacedBeforeItWasSentIsCancelled) {
  ClientHandle client = Idle();
  ASSERT_NE(client, nullptr);
  const char* first[] = {"bob"};
  const char* second[] = {"carol", "dave"};
  WatchAnswer replaced;
  im_client_watch_presence(client.get(), first, 1, WatchAnswer::On, &replaced);
  // An empty list (stop watching) is a list too: with NULL and count 0.
  im_client_watch_presence(client.get(), nullptr, 0, nullptr, nullptr);
  EXPECT_EQ(replaced.Wait(), kCancelled);
  EXPECT_NE(replaced.thread, std::this_thread::get_id()) << "answered by the network thread";
  WatchAnswer stopped;
  im_client_watch_presence(client.get(), second, 2, WatchAnswer::On, &stopped);
  im_client_stop(client.get());
  EXPECT_EQ(stopped.Wait(), kCancelled) << "Stop() answers the calls still waiting";
}

TEST(ImClientTest, UnusableTlsSettingsAreRefusedAtCreateWithTheReason) {
  const char* gateways[] = {"tls://127.0.0.1:1"};
  im_client_config config = {gateways, 1, "token", nullptr, nullptr, 0};
  im_client_callbacks callbacks = {};
  char error[256] = {};

  im_client_tls_config missing_ca = {"/nonexistent/ca.pem", nullptr, 0, nullptr};
  EXPECT_EQ(im_client_create_with_tls(&config, &missing_ca, &callbacks, error, sizeof error),
            nullptr);
  EXPECT_NE(std::string(error).find("/nonexistent/ca.pem"), std::string::npos) << error;

  const char* bad_pins[] = {"sha256/short"};
  im_client_tls_config bad_pin = {nullptr, bad_pins, 1, nullptr};
  EXPECT_EQ(im_client_create_with_tls(&config, &bad_pin, &callbacks, error, sizeof error), nullptr);
  EXPECT_NE(std::string(error).find("sha256/short"), std::string::npos) << error;

  im_client_tls_config null_pins = {nullptr, nullptr, 2, nullptr};
  EXPECT_EQ(im_client_create_with_tls(&config, &null_pins, &callbacks, error, sizeof error),
            nullptr);

  const char* good_pins[] = {"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="};
  im_client_tls_config pinned = {nullptr, good_pins, 1, "chat.example.com"};
  ClientHandle client(im_client_create_with_tls(&config, &pinned, &callbacks, error, sizeof error),
                      im_client_destroy);
  EXPECT_NE(client, nullptr) << error;
  // Without TLS settings: the system's roots.
  EXPECT_NE(ClientHandle(im_client_create_with_tls(&config, nullptr, &callbacks, nullptr, 0),
                         im_client_destroy),
            nullptr);
}

}  // namespace
}  // namespace im::sdk
