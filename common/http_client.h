#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/any_invocable.h"

namespace im::common {

struct HttpRequest {
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;  // name, value
  std::string body;                                          // sent as a POST body
  std::chrono::milliseconds timeout{5000};                   // the whole exchange, connect included
};

struct HttpResponse {
  long status = 0;  // HTTP status; 0 when no response came
  // At most Options::max_response_bytes (more is cut off, not an error).
  std::string body;
  // Why there is no response (curl's message, "timed out after N ms", "client stopped",
  // "queue full"); empty when status != 0.
  std::string error;
  bool timed_out = false;
};

// Outgoing HTTP POSTs (logic's webhooks) on libcurl's multi interface, from one thread of its own
// that runs every transfer: callers never block on the network, and connections to a host are
// kept and reused across requests. Every queue is bounded: max_in_flight transfers run at once,
// the rest wait in order, and past max_queued Post refuses.
class HttpClient {
 public:
  struct Options {
    std::string name = "http-client";  // the thread's name (<= 15 characters) and log lines
    size_t max_in_flight = 256;        // transfers running at once; more wait in order
    size_t max_queued = 100'000;       // waiting + delayed + in flight; Post beyond it is refused
    size_t max_response_bytes = 64 * 1024;
    long max_connections_per_host = 32;  // CURLMOPT_MAX_HOST_CONNECTIONS
    std::string ca_file;                 // TLS roots for https URLs; empty: the system's
  };
  using Done = absl::AnyInvocable<void(HttpResponse) &&>;

  explicit HttpClient(Options options);
  // Stop().
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Any thread, a `done` included. POSTs request.body to request.url, not before `delay` from now
  // (0: at once). `done` runs exactly once: on the client's thread with the outcome, or, when
  // refused (stopped, or max_queued reached), synchronously inside Post with error
  // "client stopped" / "queue full", and then Post returns false.
  bool Post(HttpRequest request, std::chrono::milliseconds delay, Done done);

  // Any thread but the client's (a `done` must not call it: it joins that thread). Fails every
  // waiting and delayed request with error "client stopped", aborts the running ones the same way,
  // and joins the thread; those `done`s run on the client thread or the calling one before Stop
  // returns. Idempotent.
  void Stop();

  // Any thread: waiting + delayed + in flight.
  size_t queued() const;

 private:
  using Clock = std::chrono::steady_clock;

  // A request that is not running yet.
  struct Queued {
    HttpRequest request;
    Done done;
    Clock::time_point due;
    uint64_t seq = 0;  // orders requests due at the same time as they were posted
  };
  // The delay heap's order: the earliest due on top, then the earliest posted.
  static bool DueLater(const Queued& a, const Queued& b);
  // A running exchange: its easy handle and what the handle points into.
  struct Transfer;

  // The client thread's loop and its steps.
  void Run();
  bool TakeIncoming();
  void PromoteDue(Clock::time_point now);
  void StartWaiting();
  void Start(Queued queued);
  void ReapFinished();
  void FailEverything();
  int PollTimeoutMs(Clock::time_point now) const;
  // Any thread: forgets the request in queued_, then runs `done` (which may Post again).
  void Complete(Done done, HttpResponse response);
  void AssertOnClientThread() const;

  const Options options_;
  CURLM* const multi_;  // curl_multi_wakeup from any thread; everything else on the client thread

  mutable std::mutex mutex_;
  std::vector<Queued> incoming_ ABSL_GUARDED_BY(mutex_);  // posted, not yet seen by the thread
  size_t queued_ ABSL_GUARDED_BY(mutex_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mutex_) = false;
  uint64_t next_seq_ ABSL_GUARDED_BY(mutex_) = 0;

  std::mutex stop_mutex_;  // two Stops at once join the thread once
  std::thread thread_;

  // The client thread's own.
  std::thread::id client_thread_;
  std::vector<Queued> delayed_;  // a min-heap by (due, seq)
  std::deque<Queued> waiting_;   // due, in order, for a free slot among max_in_flight
  std::unordered_map<CURL*, std::unique_ptr<Transfer>> running_;
};

}  // namespace im::common
