#include "common/http_client.h"

#include <pthread.h>

#include <algorithm>
#include <cassert>
#include <cstdlib>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/logging.h"
#include "spdlog/spdlog.h"

namespace im::common {

namespace {

constexpr char kStopped[] = "client stopped";
constexpr char kQueueFull[] = "queue full";
// curl_multi_poll's longest sleep: a bound, not a clock; Post and Stop wake it at once.
constexpr int kMaxPollMs = 1000;
// A delay past this is a bug upstream; capped so that now + delay cannot overflow.
constexpr std::chrono::milliseconds kMaxDelay = std::chrono::hours(24 * 365);

HttpResponse Failure(std::string error) {
  HttpResponse response;
  response.error = std::move(error);
  return response;
}

// libcurl's global state (OpenSSL's among it) is set up once for the process and never torn down:
// another client may be running on another thread.
void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      spdlog::critical("curl_global_init failed");
      std::abort();
    }
  });
}

CURLM* NewMulti(const HttpClient::Options& options) {
  InitCurlOnce();
  CURLM* multi = curl_multi_init();
  if (multi == nullptr) {
    spdlog::critical("{}: curl_multi_init failed", options.name);
    std::abort();
  }
  curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS, options.max_connections_per_host);
  return multi;
}

// False for a header that would split the request (CR, LF, NUL) or is no header at all.
bool IsValidHeader(const std::pair<std::string, std::string>& header) {
  const auto& [name, value] = header;
  constexpr std::string_view kNameBreakers("\r\n\0: \t", 6);
  constexpr std::string_view kValueBreakers("\r\n\0", 3);
  return !name.empty() && name.find_first_of(kNameBreakers) == std::string::npos &&
         value.find_first_of(kValueBreakers) == std::string::npos;
}

bool HasHeader(const HttpRequest& request, absl::string_view name) {
  return std::any_of(request.headers.begin(), request.headers.end(), [name](const auto& header) {
    return absl::EqualsIgnoreCase(header.first, name);
  });
}

// curl_slist_append leaves the list as it was when it fails.
bool AppendLine(curl_slist** list, const std::string& line) {
  curl_slist* longer = curl_slist_append(*list, line.c_str());
  if (longer == nullptr) return false;
  *list = longer;
  return true;
}

// The caller's headers, then a JSON Content-Type unless it gave one, and an empty Expect so that
// a large body is not held back for a "100 Continue" the webhook receiver may never send.
bool BuildHeaders(const HttpRequest& request, curl_slist** list) {
  for (const auto& [name, value] : request.headers) {
    // "Name:" would make curl drop the header; "Name;" sends it empty.
    const std::string line =
        value.empty() ? absl::StrCat(name, ";") : absl::StrCat(name, ": ", value);
    if (!AppendLine(list, line)) return false;
  }
  if (!HasHeader(request, "Content-Type") && !AppendLine(list, "Content-Type: application/json")) {
    return false;
  }
  return HasHeader(request, "Expect") || AppendLine(list, "Expect:");
}

}  // namespace

struct HttpClient::Transfer {
  Transfer(Done done_in, std::string body_in, std::chrono::milliseconds timeout_in,
           size_t max_response_bytes_in)
      : done(std::move(done_in)),
        body(std::move(body_in)),
        timeout(timeout_in),
        max_response_bytes(max_response_bytes_in) {}
  ~Transfer() {
    if (easy != nullptr) curl_easy_cleanup(easy);
    curl_slist_free_all(headers);
  }
  Transfer(const Transfer&) = delete;
  Transfer& operator=(const Transfer&) = delete;

  // Keeps what fits in the response; past that, aborts the transfer (CURLE_WRITE_ERROR, then
  // reported as a response cut short) rather than reading a body nobody will look at.
  static size_t Write(char* data, size_t size, size_t count, void* self) {
    auto* transfer = static_cast<Transfer*>(self);
    std::string& kept = transfer->response.body;
    const size_t bytes = size * count;
    const size_t room = transfer->max_response_bytes - kept.size();
    kept.append(data, std::min(bytes, room));
    if (bytes <= room) return bytes;
    transfer->truncated = true;
    return 0;
  }

  CURLcode Configure(const HttpRequest& request, const std::string& ca_file) {
    const CURLcode results[] = {
        curl_easy_setopt(easy, CURLOPT_URL, request.url.c_str()),
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https"),
        curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L),
        curl_easy_setopt(easy, CURLOPT_POST, 1L),
        // Points into `body`, which lives as long as the handle: no copy.
        curl_easy_setopt(easy, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size())),
        curl_easy_setopt(easy, CURLOPT_POSTFIELDS, body.data()),
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, headers),
        // 0 would mean no timeout at all.
        curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, std::max<long>(1, timeout.count())),
        // Signals belong to the process; name resolution times out without them.
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L),
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, &Transfer::Write),
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, this),
        curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, error),
        ca_file.empty() ? CURLE_OK : curl_easy_setopt(easy, CURLOPT_CAINFO, ca_file.c_str()),
    };
    for (CURLcode result : results) {
      if (result != CURLE_OK) return result;
    }
    return CURLE_OK;
  }

  HttpResponse Outcome(CURLcode result) {
    if (result == CURLE_OK || (result == CURLE_WRITE_ERROR && truncated)) {
      curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &response.status);
      if (response.status != 0) return std::move(response);
      return Failure("no HTTP status in the response");
    }
    if (result == CURLE_OPERATION_TIMEDOUT) {
      HttpResponse timed_out = Failure(absl::StrCat("timed out after ", timeout.count(), " ms"));
      timed_out.timed_out = true;
      return timed_out;
    }
    return Failure(error[0] != '\0' ? error : curl_easy_strerror(result));
  }

  CURL* easy = nullptr;
  curl_slist* headers = nullptr;
  Done done;
  const std::string body;
  const std::chrono::milliseconds timeout;
  const size_t max_response_bytes;
  HttpResponse response;
  bool truncated = false;
  char error[CURL_ERROR_SIZE] = {};
};

HttpClient::HttpClient(Options options) : options_(std::move(options)), multi_(NewMulti(options_)) {
  thread_ = std::thread([this] { Run(); });
  // Thread names show up in top and gdb; Linux allows 15 characters.
  pthread_setname_np(thread_.native_handle(), options_.name.substr(0, 15).c_str());
}

HttpClient::~HttpClient() {
  Stop();
  curl_multi_cleanup(multi_);
}

bool HttpClient::Post(HttpRequest request, std::chrono::milliseconds delay, Done done) {
  const char* refusal = nullptr;
  bool wake = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (stopping_) {
      refusal = kStopped;
    } else if (queued_ >= options_.max_queued) {
      refusal = kQueueFull;
    } else {
      ++queued_;
      // The thread takes the whole batch at each wake-up: one wake-up per batch is enough.
      wake = incoming_.empty();
      const Clock::time_point due =
          Clock::now() + std::clamp(delay, std::chrono::milliseconds(0), kMaxDelay);
      incoming_.push_back(Queued{std::move(request), std::move(done), due, next_seq_++});
    }
  }
  if (refusal != nullptr) {
    if (refusal == kQueueFull) {
      IM_LOG_RATE_LIMITED(spdlog::level::warn, "{}: queue full ({} requests), a POST refused",
                          options_.name, options_.max_queued);
    }
    std::move(done)(Failure(refusal));
    return false;
  }
  if (wake) curl_multi_wakeup(multi_);
  return true;
}

void HttpClient::Stop() {
  std::lock_guard<std::mutex> stop_lock(stop_mutex_);
  assert(std::this_thread::get_id() != thread_.get_id());
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
  }
  curl_multi_wakeup(multi_);
  if (thread_.joinable()) thread_.join();
}

size_t HttpClient::queued() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return queued_;
}

void HttpClient::Run() {
  client_thread_ = std::this_thread::get_id();
  while (TakeIncoming()) {
    PromoteDue(Clock::now());
    StartWaiting();
    int still_running = 0;
    curl_multi_perform(multi_, &still_running);
    ReapFinished();
    // Into the slots just freed; a handle just added makes the poll return at once.
    StartWaiting();
    curl_multi_poll(multi_, nullptr, 0, PollTimeoutMs(Clock::now()), nullptr);
  }
  FailEverything();
}

// Moves what Post queued into the delay heap (a request without delay is due already). False
// once Stop was called: then nothing more can come in.
bool HttpClient::TakeIncoming() {
  AssertOnClientThread();
  std::vector<Queued> batch;
  bool stopping = false;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    batch.swap(incoming_);
    stopping = stopping_;
  }
  for (Queued& queued : batch) {
    delayed_.push_back(std::move(queued));
    std::push_heap(delayed_.begin(), delayed_.end(), DueLater);
  }
  return !stopping;
}

void HttpClient::PromoteDue(Clock::time_point now) {
  AssertOnClientThread();
  while (!delayed_.empty() && delayed_.front().due <= now) {
    std::pop_heap(delayed_.begin(), delayed_.end(), DueLater);
    waiting_.push_back(std::move(delayed_.back()));
    delayed_.pop_back();
  }
}

void HttpClient::StartWaiting() {
  AssertOnClientThread();
  while (!waiting_.empty() && running_.size() < options_.max_in_flight) {
    Queued next = std::move(waiting_.front());
    waiting_.pop_front();
    Start(std::move(next));
  }
}

// A request that cannot even start (a bad header, no memory) completes with its reason at once.
void HttpClient::Start(Queued queued) {
  AssertOnClientThread();
  HttpRequest& request = queued.request;
  auto transfer = std::make_unique<Transfer>(std::move(queued.done), std::move(request.body),
                                             request.timeout, options_.max_response_bytes);
  if (!std::all_of(request.headers.begin(), request.headers.end(), IsValidHeader)) {
    Complete(std::move(transfer->done), Failure("invalid header name or value"));
    return;
  }
  transfer->easy = curl_easy_init();
  if (transfer->easy == nullptr || !BuildHeaders(request, &transfer->headers)) {
    Complete(std::move(transfer->done), Failure("out of memory"));
    return;
  }
  if (const CURLcode result = transfer->Configure(request, options_.ca_file); result != CURLE_OK) {
    Complete(std::move(transfer->done), Failure(curl_easy_strerror(result)));
    return;
  }
  if (const CURLMcode result = curl_multi_add_handle(multi_, transfer->easy); result != CURLM_OK) {
    Complete(std::move(transfer->done), Failure(curl_multi_strerror(result)));
    return;
  }
  CURL* easy = transfer->easy;
  running_.emplace(easy, std::move(transfer));
}

void HttpClient::ReapFinished() {
  AssertOnClientThread();
  int left = 0;
  while (CURLMsg* message = curl_multi_info_read(multi_, &left)) {
    if (message->msg != CURLMSG_DONE) continue;
    const CURLcode result = message->data.result;  // `message` dies with the handle's removal
    auto it = running_.find(message->easy_handle);
    if (it == running_.end()) continue;
    std::unique_ptr<Transfer> transfer = std::move(it->second);
    running_.erase(it);
    curl_multi_remove_handle(multi_, transfer->easy);
    HttpResponse response = transfer->Outcome(result);
    Complete(std::move(transfer->done), std::move(response));
  }
}

void HttpClient::FailEverything() {
  AssertOnClientThread();
  const size_t failed = running_.size() + waiting_.size() + delayed_.size();
  for (auto& [easy, transfer] : running_) {
    curl_multi_remove_handle(multi_, easy);
    Complete(std::move(transfer->done), Failure(kStopped));
  }
  running_.clear();
  for (Queued& queued : waiting_) Complete(std::move(queued.done), Failure(kStopped));
  waiting_.clear();
  for (Queued& queued : delayed_) Complete(std::move(queued.done), Failure(kStopped));
  delayed_.clear();
  if (failed > 0) spdlog::info("{}: stopped, {} requests failed", options_.name, failed);
}

// Until the next delayed request is due, at most kMaxPollMs; curl shortens it for its own timers.
int HttpClient::PollTimeoutMs(Clock::time_point now) const {
  if (!waiting_.empty() && running_.size() < options_.max_in_flight) return 0;
  if (delayed_.empty()) return kMaxPollMs;
  // Rounded up, so that the thread does not wake a little early and spin until the due time.
  const auto until_due = std::chrono::ceil<std::chrono::milliseconds>(delayed_.front().due - now);
  return static_cast<int>(std::clamp<int64_t>(until_due.count(), 0, kMaxPollMs));
}

void HttpClient::Complete(Done done, HttpResponse response) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    --queued_;
  }
  std::move(done)(std::move(response));
}

bool HttpClient::DueLater(const Queued& a, const Queued& b) {
  return a.due != b.due ? a.due > b.due : a.seq > b.seq;
}

void HttpClient::AssertOnClientThread() const {
  assert(std::this_thread::get_id() == client_thread_);
}

}  // namespace im::common
