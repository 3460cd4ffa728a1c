// im-reconnect-cost: what one reconnect costs a user with many conversations, with and without
// session resume (ResumeReq): frames and bytes each way and the time from Start() until the
// client holds every message sent to it while it was away. docs/benchmarks.md has the figures.
//   im-reconnect-cost --gateway 127.0.0.1:7000 --conversations 200 --missed 5 --rounds 10
#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/token.h"
#include "fmt/format.h"
#include "sdk/client.h"

namespace {

using Clock = std::chrono::steady_clock;

// Counts what a client reports; the benchmark waits on it.
class Counter : public im::sdk::ClientListener {
 public:
  void OnStateChanged(im::sdk::ConnectionState state, const im::sdk::Status&) override {
    Update([&] { connected_ = state == im::sdk::ConnectionState::kConnected; });
  }
  void OnMessages(const std::string&, const std::vector<im::sdk::Message>& messages) override {
    Update([&] { received_ += messages.size(); });
  }
  void OnSendResult(const im::sdk::SendResult& result) override {
    Update([&] { result.status.ok() ? ++sent_ : ++failed_; });
  }
  // Waits up to 60 s for `done`; false on timeout.
  template <typename Done>
  bool Wait(Done done) {
    std::unique_lock<std::mutex> lock(mutex_);
    return changed_.wait_for(lock, std::chrono::seconds(60), [&] { return done(*this); });
  }
  size_t received() const { return received_; }
  size_t sent() const { return sent_; }
  size_t failed() const { return failed_; }
  bool connected() const { return connected_; }

 private:
  template <typename Change>
  void Update(Change change) {
    std::lock_guard<std::mutex> lock(mutex_);
    change();
    changed_.notify_all();
  }
  std::mutex mutex_;
  std::condition_variable changed_;
  size_t received_ = 0;
  size_t sent_ = 0;
  size_t failed_ = 0;
  bool connected_ = false;
};

struct Settings {
  std::vector<std::string> gateways = {"127.0.0.1:7000"};
  std::string secret = "dev-secret-change-me";
  int conversations = 200;
  int missed = 5;
  int rounds = 10;
  // After the setup, wait this long before the first (unmeasured) reconnect, so that the new
  // conversations are older than a resume looks back (logic.resume_margin_ms, 15 s) and the
  // measured reconnects see what a user who has had them for a while sees.
  int settle_ms = 16'000;
};

// One measured reconnect: what crossed the wire and how long it took.
struct Sample {
  double ms = 0;
  uint64_t frames_sent = 0;
  uint64_t bytes_sent = 0;
  uint64_t frames_received = 0;
  uint64_t bytes_received = 0;
};

class Bench {
 public:
  explicit Bench(Settings settings) : settings_(std::move(settings)) {
    std::random_device random;
    run_ = fmt::format("rc{:08x}", random());
  }

  im::sdk::ClientOptions Options(const std::string& uid, bool resume) const {
    im::sdk::ClientOptions options;
    options.gateways = settings_.gateways;
    options.start_at_random_gateway = false;
    options.token = im::common::SignToken({uid,
                                           std::chrono::duration_cast<std::chrono::seconds>(
                                               std::chrono::system_clock::now().time_since_epoch())
                                                   .count() +
                                               3600,
                                           ""},
                                          settings_.secret);
    options.device = "bench";
    options.resume_sessions = resume;
    options.reconnect_initial_ms = 10;
    return options;
  }
  std::string Peer(int i) const { return fmt::format("{}-peer{}", run_, i); }

  // A user in `conversations` single chats (it wrote one message to each peer), then `rounds`
  // reconnects each after `missed` peers wrote to it while it was away.
  std::vector<Sample> Run(bool resume) {
    const std::string uid = fmt::format("{}-user-{}", run_, resume ? "resume" : "list");
    Counter user_seen;
    im::sdk::Client user(Options(uid, resume), &user_seen);
    user.Start();
    if (!user_seen.Wait([](const Counter& c) { return c.connected(); })) Fail("no login");
    for (int i = 0; i < settings_.conversations; ++i) user.SendTo(Peer(i), "hello");
    if (!user_seen.Wait([&](const Counter& c) {
          return c.sent() + c.failed() == static_cast<size_t>(settings_.conversations);
        }) ||
        user_seen.failed() > 0) {
      Fail("setting up the conversations failed");
    }
    std::vector<std::unique_ptr<Counter>> peers_seen;
    std::vector<std::unique_ptr<im::sdk::Client>> peers;
    for (int i = 0; i < settings_.missed; ++i) {
      peers_seen.push_back(std::make_unique<Counter>());
      peers.push_back(
          std::make_unique<im::sdk::Client>(Options(Peer(i), true), peers_seen[i].get()));
      peers[i]->Start();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(settings_.settle_ms));
    Reconnect(user, user_seen);
    std::vector<Sample> samples;
    for (int round = 0; round < settings_.rounds; ++round) {
      user.Stop();
      for (int i = 0; i < settings_.missed; ++i) {
        const size_t before = peers_seen[i]->sent();
        peers[i]->SendTo(uid, fmt::format("while away {}", round));
        if (!peers_seen[i]->Wait([&](const Counter& c) { return c.sent() > before; })) {
          Fail("a peer's send failed");
        }
      }
      const size_t expected = user_seen.received() + static_cast<size_t>(settings_.missed);
      const im::sdk::ClientStats before = user.stats();
      const Clock::time_point started = Clock::now();
      user.Start();
      if (!user_seen.Wait([&](const Counter& c) { return c.received() >= expected; })) {
        Fail("the messages sent while away did not arrive");
      }
      const double ms = std::chrono::duration<double, std::milli>(Clock::now() - started).count();
      const im::sdk::ClientStats after = user.stats();
      samples.push_back(Sample{ms, after.frames_sent - before.frames_sent,
                               after.bytes_sent - before.bytes_sent,
                               after.frames_received - before.frames_received,
                               after.bytes_received - before.bytes_received});
    }
    return samples;
  }

 private:
  // A reconnect whose cost is not measured: it moves the session's baseline to now.
  static void Reconnect(im::sdk::Client& client, Counter& seen) {
    client.Stop();
    client.Start();
    if (!seen.Wait([](const Counter& c) { return c.connected(); })) Fail("no login");
    std::this_thread::sleep_for(std::chrono::seconds(1));  // its listing or resume is answered
  }

  [[noreturn]] static void Fail(const char* what) {
    std::fprintf(stderr, "im-reconnect-cost: %s\n", what);
    std::exit(1);
  }

  Settings settings_;
  std::string run_;
};

template <typename Field>
double Median(std::vector<Sample> samples, Field field) {
  std::sort(samples.begin(), samples.end(),
            [&](const Sample& a, const Sample& b) { return field(a) < field(b); });
  return static_cast<double>(field(samples[samples.size() / 2]));
}

void Report(const char* mode, const std::vector<Sample>& samples) {
  std::printf("%-8s %8.1f %8.0f %10.0f %8.0f %10.0f\n", mode,
              Median(samples, [](const Sample& s) { return s.ms; }),
              Median(samples, [](const Sample& s) { return s.frames_sent; }),
              Median(samples, [](const Sample& s) { return s.bytes_sent; }),
              Median(samples, [](const Sample& s) { return s.frames_received; }),
              Median(samples, [](const Sample& s) { return s.bytes_received; }));
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"im-reconnect-cost: one reconnect's cost with and without session resume"};
  Settings settings;
  app.add_option("--gateway", settings.gateways, "gateway host:port (repeatable)");
  app.add_option("--secret", settings.secret, "the token secret (logic.token_secret)");
  app.add_option("--conversations", settings.conversations, "conversations of the user")
      ->check(CLI::Range(1, 10'000));
  app.add_option("--missed", settings.missed, "conversations written to while it is away")
      ->check(CLI::Range(1, 100));
  app.add_option("--rounds", settings.rounds, "reconnects measured per mode")
      ->check(CLI::Range(1, 1000));
  app.add_option("--settle-ms", settings.settle_ms,
                 "wait after the setup (at least logic.resume_margin_ms)");
  CLI11_PARSE(app, argc, argv);

  Bench bench(settings);
  const std::vector<Sample> listing = bench.Run(false);
  const std::vector<Sample> resuming = bench.Run(true);
  std::printf("%d conversations, %d written to while away; medians of %d reconnects\n",
              settings.conversations, settings.missed, settings.rounds);
  std::printf("%-8s %8s %8s %10s %8s %10s\n", "mode", "ms", "frames>", "bytes>", "frames<",
              "bytes<");
  Report("list", listing);
  Report("resume", resuming);
  return 0;
}
