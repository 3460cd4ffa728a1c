// im-chatload: a simple single-chat load driver for the benchmark in docs/benchmarks.md (the full
// load generator, im-bench, is a later piece of work). Pairs of users on the given gateways; each
// sender sends at a fixed rate on an open-loop schedule (latency counts from the scheduled send
// time, so a stalled server cannot hide its stalls); each receiver checks that pushes arrive once
// and in seq order. Prints one JSON object with the figures.
//
// Threads, not an event loop: two per connection (sender + reader). Fine for tens of pairs and a
// few thousand messages per second, which is what this driver is for.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/token.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"
#include "tests/support/wire_client.h"

namespace im::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using im::testing::WireClient;

struct Options {
  std::vector<std::string> gateways = {"127.0.0.1:7000", "127.0.0.1:7001"};
  std::string secret = "dev-secret-change-me";
  uint32_t pairs = 10;
  double rate = 1000;  // messages per second, all pairs together
  double duration_sec = 10;
  uint32_t body_bytes = 100;
  std::string run_id;
};

// Latency samples in microseconds, from any thread.
class Samples {
 public:
  void Add(int64_t micros) {
    std::lock_guard<std::mutex> lock(mutex_);
    values_.push_back(micros);
  }
  nlohmann::ordered_json Summary() {
    std::lock_guard<std::mutex> lock(mutex_);
    std::sort(values_.begin(), values_.end());
    auto at = [this](double q) {
      if (values_.empty()) return 0.0;
      return values_[std::min(values_.size() - 1, static_cast<size_t>(q * values_.size()))] /
             1000.0;
    };
    return {{"count", values_.size()}, {"p50_ms", at(0.50)},
            {"p90_ms", at(0.90)},      {"p99_ms", at(0.99)},
            {"p999_ms", at(0.999)},    {"max_ms", values_.empty() ? 0.0 : values_.back() / 1000.0}};
  }

 private:
  std::mutex mutex_;
  std::vector<int64_t> values_;
};

struct Totals {
  std::atomic<uint64_t> sent{0}, acked{0}, delivered{0};
  std::atomic<uint64_t> duplicates{0};
  std::atomic<uint64_t> overtaken{0};  // pushed after a higher seq (reordered on the way)
  std::atomic<uint64_t> missing{0};
  std::mutex errors_mutex;
  std::map<std::string, uint64_t> errors;  // by status code name
  Samples ack_latency, delivery_latency;

  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(errors_mutex);
    ++errors[what];
  }
};

std::unique_ptr<WireClient> Connect(const std::string& gateway, const Options& options,
                                    const std::string& uid, const std::string& device) {
  const size_t colon = gateway.rfind(':');
  auto client = WireClient::Connect(gateway.substr(0, colon),
                                    static_cast<uint16_t>(std::stoi(gateway.substr(colon + 1))));
  if (!client.ok()) return nullptr;
  const int64_t exp = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() +
                      3600;
  auto resp =
      (*client)->Login(common::SignToken({uid, exp, ""}, options.secret), device, Millis(10'000));
  if (!resp || resp->login_resp().status().code() != im::v1::OK) return nullptr;
  return std::move(*client);
}

int64_t MicrosSince(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - t).count();
}

// The scheduled send time travels in the body (steady clock: same process, same clock).
std::string Body(Clock::time_point scheduled, uint32_t bytes) {
  std::string body = std::to_string(scheduled.time_since_epoch().count());
  body.resize(std::max<size_t>(bytes, body.size() + 1), '.');
  return body;
}

Clock::time_point ScheduledOf(const std::string& body) {
  return Clock::time_point(Clock::duration(std::stoll(body.substr(0, body.find('.')))));
}

void RunPair(uint32_t index, const Options& options, Clock::time_point start, Totals* totals) {
  const std::string sender_uid = fmt::format("{}-s{}", options.run_id, index);
  const std::string receiver_uid = fmt::format("{}-r{}", options.run_id, index);
  auto sender =
      Connect(options.gateways[index % options.gateways.size()], options, sender_uid, "load");
  auto receiver = Connect(options.gateways[(index + 1) % options.gateways.size()], options,
                          receiver_uid, "load");
  if (!sender || !receiver) {
    totals->Error("connect_or_login_failed");
    return;
  }
  const double pair_rate = options.rate / options.pairs;
  const auto interval =
      std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(1.0 / pair_rate));
  const uint64_t total = static_cast<uint64_t>(pair_rate * options.duration_sec);
  std::vector<Clock::time_point> scheduled(total + 1);

  std::thread acks([&] {
    for (uint64_t answered = 0; answered < total;) {
      std::optional<im::v1::Frame> frame = sender->Receive(Millis(10'000));
      if (!frame) break;
      if (!frame->has_send_resp()) continue;
      ++answered;
      const auto& resp = frame->send_resp();
      if (resp.status().code() != im::v1::OK) {
        totals->Error(im::v1::Code_Name(resp.status().code()));
        continue;
      }
      totals->acked.fetch_add(1);
      totals->ack_latency.Add(MicrosSince(scheduled[frame->id()]));
    }
  });
  std::thread pushes([&] {
    // Like the SDK: messages are held by seq, so one that overtook another is not lost; what
    // counts is that each seq arrives once and, in the end, none is missing.
    std::set<uint64_t> seen;
    uint64_t highest = 0;
    while (true) {
      std::optional<im::v1::Frame> frame = receiver->Receive(Millis(5'000));
      if (!frame) break;
      if (!frame->has_message_push()) continue;
      for (const im::v1::Message& m : frame->message_push().messages()) {
        if (!seen.insert(m.seq()).second) {
          totals->duplicates.fetch_add(1);
          continue;
        }
        if (m.seq() < highest) totals->overtaken.fetch_add(1);
        highest = std::max(highest, m.seq());
        totals->delivered.fetch_add(1);
        totals->delivery_latency.Add(MicrosSince(ScheduledOf(m.body())));
      }
    }
    // Seqs below the highest one that never came (none expected: every send here succeeds).
    totals->missing.fetch_add(highest - seen.size());
  });
  for (uint64_t k = 1; k <= total; ++k) {
    scheduled[k] = start + interval * (k - 1);
    std::this_thread::sleep_until(scheduled[k]);
    im::v1::Frame frame;
    frame.set_id(k);
    im::v1::SendReq* req = frame.mutable_send_req();
    req->set_to_uid(receiver_uid);
    req->set_client_msg_id(fmt::format("{}", k));
    req->set_type(im::v1::TEXT);
    req->set_body(Body(scheduled[k], options.body_bytes));
    if (!sender->SendFrame(frame)) {
      totals->Error("send_failed");
      break;
    }
    totals->sent.fetch_add(1);
  }
  acks.join();
  pushes.join();
}

int Run(Options options) {
  if (options.run_id.empty()) {
    options.run_id = fmt::format(
        "load{}", std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'007);
  }
  Totals totals;
  // Every pair logs in first; the clock starts a moment later for all of them together.
  const Clock::time_point start = Clock::now() + Millis(2000);
  std::vector<std::thread> pairs;
  for (uint32_t i = 0; i < options.pairs; ++i) {
    pairs.emplace_back(RunPair, i, std::cref(options), start, &totals);
  }
  for (std::thread& t : pairs) t.join();
  const double seconds = options.duration_sec;
  nlohmann::ordered_json result = {
      {"offered_per_sec", options.rate},
      {"pairs", options.pairs},
      {"duration_sec", seconds},
      {"body_bytes", options.body_bytes},
      {"sent", totals.sent.load()},
      {"acked", totals.acked.load()},
      {"delivered", totals.delivered.load()},
      {"acked_per_sec", totals.acked.load() / seconds},
      {"delivered_per_sec", totals.delivered.load() / seconds},
      {"ack_latency", totals.ack_latency.Summary()},
      {"delivery_latency", totals.delivery_latency.Summary()},
      {"duplicates", totals.duplicates.load()},
      {"overtaken", totals.overtaken.load()},
      {"missing", totals.missing.load()},
      {"errors", totals.errors},
  };
  std::printf("%s\n", result.dump(2).c_str());
  const bool clean = totals.errors.empty() && totals.duplicates == 0 && totals.missing == 0 &&
                     totals.acked == totals.sent && totals.delivered == totals.acked;
  return clean ? 0 : 1;
}

}  // namespace
}  // namespace im::tools

int main(int argc, char** argv) {
  im::tools::Options options;
  CLI::App app{"im-chatload: single-chat load at a fixed offered rate"};
  app.add_option("--gateways", options.gateways, "gateway client addresses (host:port)")
      ->delimiter(',');
  app.add_option("--secret", options.secret, "token secret shared with logic");
  app.add_option("--pairs", options.pairs, "sender/receiver pairs")->check(CLI::Range(1, 500));
  app.add_option("--rate", options.rate, "offered messages per second, all pairs together")
      ->check(CLI::PositiveNumber);
  app.add_option("--duration", options.duration_sec, "seconds of sending")
      ->check(CLI::PositiveNumber);
  app.add_option("--body", options.body_bytes, "body bytes per message");
  app.add_option("--run-id", options.run_id, "prefix of the user ids (default: random)");
  CLI11_PARSE(app, argc, argv);
  return im::tools::Run(options);
}
