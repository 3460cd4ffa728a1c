// im-groupload: group fan-out load for the benchmark in docs/benchmarks.md. An owner creates a
// group of --members users (GroupCreate, then GroupJoin{uids} in chunks), --online of them log in
// (round-robin over the gateways), and --senders of those send to the group at --rate messages per
// second together, on an open-loop schedule (latency counts from the scheduled send time, so a
// stalled server cannot hide its stalls). Then it waits until every online member holds every
// acknowledged message, or --drain-timeout passes.
//
// Checks: every online member receives every acknowledged message exactly once, except the sending
// connection, which gets its SendResp instead of a push; missing, duplicated and reordered (a seq
// below one the member already had) deliveries are counted. Figures: per message, the time from
// its scheduled send to the first and to the last online member's delivery; ack latency;
// deliveries per second. Prints one JSON object.
//
// Threads: a few readers, each waiting on an epoll set over its share of the members' sockets
// (one thread per connection spent most of a core on context switches at a thousand members), a
// thread per sender, and blocking writes. Per delivery a reader does a bit test and a few atomic
// updates, so a thousand members at hundreds of messages per second cost little next to the
// cluster under test.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "common/frame_codec.h"
#include "common/token.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace im::tools {
namespace {

using Clock = std::chrono::steady_clock;
using Millis = std::chrono::milliseconds;
using im::v1::Frame;

constexpr int64_t kTokenLifetimeSec = 3600;
constexpr Millis kCallTimeout(60'000);  // group setup calls on large groups take a while
constexpr int kReadTickMs = 200;        // how often a reader looks at the stop flag
constexpr Millis kPingSweep(1000);      // how often a reader checks its members' heartbeats
constexpr uint32_t kMaxPushFrameBytes = 64 << 20;
constexpr size_t kReadBufferBytes = 256 * 1024;
// Ids of setup calls, far above the SendReq ids (message index + 1).
constexpr uint64_t kFirstCallId = uint64_t{1} << 48;

struct Options {
  std::vector<std::string> gateways = {"127.0.0.1:7000", "127.0.0.1:7001"};
  std::string secret = "dev-secret-change-me";
  uint32_t members = 100;
  uint32_t online = 100;
  uint32_t senders = 2;
  double rate = 50;  // messages per second, all senders together
  double duration_sec = 10;
  uint32_t body_bytes = 100;
  std::string run_id;
  // Uids per GroupCreate / GroupJoin request: 500 uids of at most 64 bytes stay well under the
  // gateway's 64 KiB frame limit (gateway.max_frame_bytes), and logic writes each member's
  // conversation row in the request, so a larger chunk risks the gateway's 5 s call deadline.
  uint32_t join_chunk = 500;
  uint32_t login_threads = 8;
  uint32_t reader_threads = 2;
  double drain_timeout_sec = 30;
};

// Latency samples in microseconds; Summary() in milliseconds.
nlohmann::ordered_json Summary(std::vector<int64_t> values) {
  std::sort(values.begin(), values.end());
  auto at = [&values](double q) {
    if (values.empty()) return 0.0;
    return values[std::min(values.size() - 1, static_cast<size_t>(q * values.size()))] / 1000.0;
  };
  return {{"count", values.size()}, {"p50_ms", at(0.50)},
          {"p90_ms", at(0.90)},     {"p99_ms", at(0.99)},
          {"p999_ms", at(0.999)},   {"max_ms", values.empty() ? 0.0 : values.back() / 1000.0}};
}

int64_t MicrosBetween(Clock::time_point from, Clock::time_point to) {
  return std::chrono::duration_cast<std::chrono::microseconds>(to - from).count();
}

// What the run shares between threads. The schedule is fixed before any thread starts; each
// message's delivery figures are atomics updated by every reader.
struct Run {
  Run(const Options& o, uint64_t total_messages)
      : options(o),
        total(total_messages),
        scheduled(total_messages),
        seq_of(total_messages, 0),
        ack_us(total_messages, -1),
        first_us(total_messages),
        last_us(total_messages),
        delivered_to(total_messages) {
    for (uint64_t k = 0; k < total; ++k) {
      first_us[k].store(std::numeric_limits<int64_t>::max(), std::memory_order_relaxed);
      last_us[k].store(-1, std::memory_order_relaxed);
      delivered_to[k].store(0, std::memory_order_relaxed);
    }
  }

  void Error(const std::string& what) {
    std::lock_guard<std::mutex> lock(errors_mutex);
    ++errors[what];
  }

  const Options& options;
  const uint64_t total;
  std::vector<Clock::time_point> scheduled;  // by message index k (client_msg_id)
  // Written by the sender's reader when the SendResp arrives (0: not acknowledged); read after
  // every thread was joined.
  std::vector<uint64_t> seq_of;
  std::vector<int64_t> ack_us;  // scheduled send -> SendResp; same writer and reader as seq_of
  std::vector<std::atomic<int64_t>> first_us, last_us;  // scheduled send -> delivery
  std::vector<std::atomic<uint32_t>> delivered_to;      // distinct members that got it

  std::atomic<bool> stop{false};
  std::atomic<uint64_t> sent{0}, answered{0}, acked{0};
  std::atomic<int64_t> last_delivery_us{0};  // since the start of the send phase

  std::mutex errors_mutex;
  std::map<std::string, uint64_t> errors;
};

// One member's socket. Writes block and may come from two threads (the member's sender and its
// reader's pings), so they are serialized; reads happen on one thread at a time: the setup thread
// (Call) before the readers start, then the member's reader (ReadAvailable).
class Connection {
 public:
  static std::unique_ptr<Connection> Open(const std::string& address, std::string* error) {
    const size_t colon = address.rfind(':');
    sockaddr_in peer{};
    peer.sin_family = AF_INET;
    peer.sin_port = htons(static_cast<uint16_t>(std::atoi(address.c_str() + colon + 1)));
    if (colon == std::string::npos ||
        ::inet_pton(AF_INET, address.substr(0, colon).c_str(), &peer.sin_addr) != 1) {
      *error = "bad_gateway_address";
      return nullptr;
    }
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      *error = "socket_failed";
      return nullptr;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (::connect(fd, reinterpret_cast<sockaddr*>(&peer), sizeof(peer)) != 0) {
      ::close(fd);
      *error = "connect_failed";
      return nullptr;
    }
    return std::unique_ptr<Connection>(new Connection(fd));
  }
  ~Connection() { ::close(fd_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  int fd() const { return fd_; }

  // Any thread.
  bool Send(const Frame& frame) {
    const std::string bytes = common::EncodeFrame(frame);
    std::lock_guard<std::mutex> lock(send_mutex_);
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = ::send(fd_, bytes.data() + done, bytes.size() - done, MSG_NOSIGNAL);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return false;
      done += static_cast<size_t>(n);
    }
    return true;
  }

  // Sends `request` with a fresh id and waits for the frame with that id. Other frames that
  // arrive meanwhile are kept for TakeEarly().
  std::optional<Frame> Call(Frame request, Millis timeout) {
    const uint64_t id = next_call_id_++;
    request.set_id(id);
    if (!Send(request)) return std::nullopt;
    const Clock::time_point deadline = Clock::now() + timeout;
    std::optional<Frame> answer;
    char buffer[64 * 1024];
    while (!answer) {
      const auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
      pollfd p{fd_, POLLIN, 0};
      if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
      const bool open = ReadAvailable(buffer, sizeof(buffer), [&](Frame&& frame) {
        if (!answer && frame.id() == id) {
          answer = std::move(frame);
        } else {
          early_.push_back(std::move(frame));
        }
      });
      if (!open && !answer) return std::nullopt;
    }
    return answer;
  }

  // Reads what the socket holds now (without blocking) and hands each whole frame to `sink`.
  // False once the peer closed the connection or sent bytes that are not frames.
  template <typename Sink>
  bool ReadAvailable(char* buffer, size_t size, Sink&& sink) {
    const ssize_t n = ::recv(fd_, buffer, size, MSG_DONTWAIT);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    if (n == 0) return false;
    const common::DecodeError error =
        decoder_.Feed(std::string_view(buffer, static_cast<size_t>(n)), [&](Frame&& frame) {
          sink(std::move(frame));
          return true;
        });
    return error == common::DecodeError::kNone;
  }

  // Frames that arrived during Call() and were not its answer.
  std::vector<Frame> TakeEarly() { return std::exchange(early_, {}); }

 private:
  explicit Connection(int fd) : fd_(fd) {}

  const int fd_;
  std::mutex send_mutex_;
  common::FrameDecoder decoder_{kMaxPushFrameBytes};
  uint64_t next_call_id_ = kFirstCallId;
  std::vector<Frame> early_;
};

// One online member: its connection and what it received. Only its reader thread touches the
// counters and `got` until the reader is joined.
struct Member {
  uint32_t index = 0;
  std::string uid;
  std::unique_ptr<Connection> conn;
  uint32_t heartbeat_sec = 30;
  Clock::time_point last_ping;

  std::vector<uint8_t> got;  // by seq
  uint64_t highest_seq = 0;
  std::atomic<uint64_t> unique{0};  // read by the drain wait
  uint64_t duplicates = 0, reordered = 0, self_pushes = 0, unknown = 0, push_frames = 0;
  uint64_t reordered_in_frame = 0;  // a lower seq after a higher one inside one MessagePush
  uint64_t reorder_depth = 0;       // the furthest a seq arrived below the highest one held
  bool closed = false;
};

// Connects `member` to `gateway` and logs it in; on failure says why in `error`.
bool Login(Member& member, const std::string& gateway, const Options& options, std::string* error) {
  member.conn = Connection::Open(gateway, error);
  if (!member.conn) return false;
  const int64_t exp = std::chrono::duration_cast<std::chrono::seconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count() +
                      kTokenLifetimeSec;
  Frame login;
  login.mutable_login_req()->set_token(common::SignToken({member.uid, exp, ""}, options.secret));
  login.mutable_login_req()->set_device("load");
  login.mutable_login_req()->set_platform("im-groupload");
  std::optional<Frame> resp = member.conn->Call(std::move(login), Millis(30'000));
  if (!resp || !resp->has_login_resp()) {
    *error = "login_no_answer";
  } else if (resp->login_resp().status().code() != im::v1::OK) {
    *error = "login_" + im::v1::Code_Name(resp->login_resp().status().code());
  } else {
    if (resp->login_resp().heartbeat_sec() > 0) {
      member.heartbeat_sec = resp->login_resp().heartbeat_sec();
    }
    member.last_ping = Clock::now();
    return true;
  }
  member.conn.reset();
  return false;
}

std::string MemberUid(const Options& options, uint32_t i) {
  return fmt::format("{}-m{}", options.run_id, i);
}

// The owner (member 0) creates the group with the first members and adds the rest in chunks.
// Returns the group id, or an error text.
std::optional<std::string> CreateGroup(Member& owner, const Options& options, std::string* error) {
  const uint32_t chunk = options.join_chunk;
  Frame create;
  create.mutable_group_create_req()->set_name(fmt::format("{} load", options.run_id));
  uint32_t next = 1;
  for (; next < options.members && next < chunk; ++next) {
    create.mutable_group_create_req()->add_members(MemberUid(options, next));
  }
  auto resp = owner.conn->Call(create, kCallTimeout);
  if (!resp || !resp->has_group_create_resp()) {
    *error = "group_create: no answer";
    return std::nullopt;
  }
  if (resp->group_create_resp().status().code() != im::v1::OK) {
    *error = fmt::format("group_create: {} {}",
                         im::v1::Code_Name(resp->group_create_resp().status().code()),
                         resp->group_create_resp().status().message());
    return std::nullopt;
  }
  const std::string group_id = resp->group_create_resp().group_id();
  while (next < options.members) {
    Frame join;
    join.mutable_group_join_req()->set_group_id(group_id);
    for (uint32_t n = 0; n < chunk && next < options.members; ++n, ++next) {
      join.mutable_group_join_req()->add_uids(MemberUid(options, next));
    }
    auto joined = owner.conn->Call(join, kCallTimeout);
    if (!joined || !joined->has_group_join_resp()) {
      *error = fmt::format("group_join (members up to {}): no answer", next);
      return std::nullopt;
    }
    if (joined->group_join_resp().status().code() != im::v1::OK) {
      *error = fmt::format("group_join (members up to {}): {} {}", next,
                           im::v1::Code_Name(joined->group_join_resp().status().code()),
                           joined->group_join_resp().status().message());
      return std::nullopt;
    }
  }
  return group_id;
}

void MaybePing(Member& member, Clock::time_point now) {
  // Pushes do not count as life; a receive-only member must speak within three heartbeats.
  if (member.closed || now - member.last_ping <
                           std::chrono::seconds(std::max<uint32_t>(1, member.heartbeat_sec / 3))) {
    return;
  }
  member.last_ping = now;
  Frame ping;
  ping.mutable_ping()->set_client_time_ms(0);
  member.conn->Send(ping);
}

void OnPush(Member& member, const im::v1::MessagePush& push, Clock::time_point now,
            Clock::time_point send_start, Run* run) {
  ++member.push_frames;
  const int64_t now_since_start = MicrosBetween(send_start, now);
  bool delivered = false;
  uint64_t previous_in_frame = 0;
  for (const im::v1::Message& m : push.messages()) {
    if (m.seq() < previous_in_frame) ++member.reordered_in_frame;
    previous_in_frame = m.seq();
    if (m.sender() == member.uid) ++member.self_pushes;
    const uint64_t k = std::strtoull(m.client_msg_id().c_str(), nullptr, 10);
    if (m.seq() == 0 || m.seq() >= member.got.size() || k >= run->total) {
      ++member.unknown;
      continue;
    }
    if (member.got[m.seq()]) {
      ++member.duplicates;
      continue;
    }
    member.got[m.seq()] = 1;
    if (m.seq() < member.highest_seq) {
      ++member.reordered;
      member.reorder_depth = std::max(member.reorder_depth, member.highest_seq - m.seq());
    }
    member.highest_seq = std::max(member.highest_seq, m.seq());
    member.unique.fetch_add(1, std::memory_order_relaxed);
    delivered = true;
    const int64_t latency = MicrosBetween(run->scheduled[k], now);
    std::atomic<int64_t>& first = run->first_us[k];
    for (int64_t seen = first.load(std::memory_order_relaxed);
         latency < seen && !first.compare_exchange_weak(seen, latency);) {
    }
    std::atomic<int64_t>& last = run->last_us[k];
    for (int64_t seen = last.load(std::memory_order_relaxed);
         latency > seen && !last.compare_exchange_weak(seen, latency);) {
    }
    run->delivered_to[k].fetch_add(1, std::memory_order_relaxed);
  }
  if (delivered) {
    std::atomic<int64_t>& latest = run->last_delivery_us;
    for (int64_t seen = latest.load(std::memory_order_relaxed);
         now_since_start > seen && !latest.compare_exchange_weak(seen, now_since_start);) {
    }
  }
}

void OnSendResp(const Frame& frame, Clock::time_point now, Run* run) {
  run->answered.fetch_add(1);
  const uint64_t k = frame.id() - 1;
  const im::v1::SendResp& resp = frame.send_resp();
  if (k >= run->total) return run->Error("send_resp_unknown_id");
  if (resp.status().code() != im::v1::OK) {
    return run->Error("send_" + im::v1::Code_Name(resp.status().code()));
  }
  run->seq_of[k] = resp.seq();
  run->acked.fetch_add(1);
  run->ack_us[k] = MicrosBetween(run->scheduled[k], now);
}

void OnFrame(Member& member, const Frame& frame, Clock::time_point now,
             Clock::time_point send_start, Run* run) {
  switch (frame.body_case()) {
    case Frame::kMessagePush:
      OnPush(member, frame.message_push(), now, send_start, run);
      break;
    case Frame::kSendResp:
      OnSendResp(frame, now, run);
      break;
    case Frame::kPong:
      break;
    case Frame::kKick:
      run->Error("kicked");
      break;
    case Frame::kGoAway:
      run->Error("go_away");
      break;
    case Frame::kError:
      // With an id, the gateway refused that request (TOO_MANY_IN_FLIGHT): it is answered.
      if (frame.id() != 0) run->answered.fetch_add(1);
      run->Error("error_" + im::v1::Code_Name(frame.error().code()));
      break;
    default:
      run->Error("unexpected_frame");
      break;
  }
}

// Reads the sockets of `members` until the run stops.
void ReadLoop(std::vector<Member*> members, Clock::time_point send_start, Run* run) {
  const int epoll = ::epoll_create1(EPOLL_CLOEXEC);
  if (epoll < 0) return run->Error("epoll_create_failed");
  Clock::time_point now = Clock::now();
  for (Member* member : members) {
    for (const Frame& frame : member->conn->TakeEarly()) {
      OnFrame(*member, frame, now, send_start, run);
    }
    epoll_event event{};
    event.events = EPOLLIN;
    event.data.ptr = member;
    if (::epoll_ctl(epoll, EPOLL_CTL_ADD, member->conn->fd(), &event) != 0) {
      run->Error("epoll_ctl_failed");
    }
  }
  std::vector<epoll_event> events(256);
  std::vector<char> buffer(kReadBufferBytes);
  Clock::time_point next_ping_sweep = now + kPingSweep;
  while (!run->stop.load(std::memory_order_relaxed)) {
    const int n = ::epoll_wait(epoll, events.data(), static_cast<int>(events.size()), kReadTickMs);
    now = Clock::now();
    for (int i = 0; i < n; ++i) {
      Member& member = *static_cast<Member*>(events[i].data.ptr);
      const bool open = member.conn->ReadAvailable(
          buffer.data(), buffer.size(),
          [&](Frame&& frame) { OnFrame(member, frame, now, send_start, run); });
      if (!open) {
        run->Error("connection_closed_by_server");
        member.closed = true;
        ::epoll_ctl(epoll, EPOLL_CTL_DEL, member.conn->fd(), nullptr);
      }
    }
    if (now >= next_ping_sweep) {
      for (Member* member : members) MaybePing(*member, now);
      next_ping_sweep = now + kPingSweep;
    }
  }
  ::close(epoll);
}

// Sender `s` sends messages s, s + S, s + 2S, ... of the global schedule.
void SendLoop(Member& member, uint32_t s, const std::string& conv_id, Run* run) {
  const Options& options = run->options;
  std::string padding(options.body_bytes, '.');
  for (uint64_t k = s; k < run->total; k += options.senders) {
    std::this_thread::sleep_until(run->scheduled[k]);
    Frame frame;
    frame.set_id(k + 1);
    im::v1::SendReq* req = frame.mutable_send_req();
    req->set_conv_id(conv_id);
    req->set_client_msg_id(std::to_string(k));
    req->set_type(im::v1::TEXT);
    std::string body = fmt::format("{} {}", options.run_id, k);
    if (body.size() < padding.size()) body.append(padding, body.size());
    req->set_body(std::move(body));
    if (!member.conn->Send(frame)) {
      run->Error("send_failed");
      return;
    }
    run->sent.fetch_add(1);
  }
}

// Progress lines go to stderr (stdout carries the JSON only), so that a script can tell the
// phases apart, e.g. to read the servers' CPU time over the send phase alone.
template <typename... Args>
void Progress(fmt::format_string<Args...> format, Args&&... args) {
  std::fprintf(stderr, "im-groupload: %s\n",
               fmt::format(format, std::forward<Args>(args)...).c_str());
}

int Fail(const std::string& what, nlohmann::ordered_json result) {
  result["failed"] = what;
  std::printf("%s\n", result.dump(2).c_str());
  return 2;
}

int RunLoad(Options options) {
  if (options.run_id.empty()) {
    options.run_id = fmt::format(
        "grp{}", std::chrono::system_clock::now().time_since_epoch().count() % 1'000'000'007);
  }
  options.online = std::min(options.online, options.members);
  options.senders = std::min(options.senders, options.online);
  const uint64_t total = static_cast<uint64_t>(options.rate * options.duration_sec);
  nlohmann::ordered_json result = {
      {"run_id", options.run_id},
      {"gateways", options.gateways},
      {"members", options.members},
      {"online", options.online},
      {"senders", options.senders},
      {"offered_per_sec", options.rate},
      {"duration_sec", options.duration_sec},
      {"body_bytes", options.body_bytes},
  };

  // Member i is on gateway i % G; the first members are the senders, the owner is member 0.
  std::vector<std::unique_ptr<Member>> members(options.online);
  for (uint32_t i = 0; i < options.online; ++i) {
    members[i] = std::make_unique<Member>();
    members[i]->index = i;
    members[i]->uid = MemberUid(options, i);
  }
  auto login = [&](Member& m, std::string* error) {
    return Login(m, options.gateways[m.index % options.gateways.size()], options, error);
  };

  const Clock::time_point setup_start = Clock::now();
  std::string error;
  if (!login(*members[0], &error)) return Fail("owner " + error, result);
  std::optional<std::string> group_id = CreateGroup(*members[0], options, &error);
  if (!group_id) return Fail(error, result);
  const std::string conv_id = "g:" + *group_id;
  const double group_setup_sec = std::chrono::duration<double>(Clock::now() - setup_start).count();
  result["group_id"] = *group_id;
  result["group_setup_sec"] = group_setup_sec;
  Progress("group {} of {} members created in {:.1f} s", *group_id, options.members,
           group_setup_sec);

  const Clock::time_point login_start = Clock::now();
  std::atomic<uint32_t> next_login{1};
  std::mutex login_errors_mutex;
  std::map<std::string, uint64_t> login_errors;
  std::vector<std::thread> loggers;
  for (uint32_t t = 0; t < options.login_threads; ++t) {
    loggers.emplace_back([&] {
      for (uint32_t i = next_login.fetch_add(1); i < options.online; i = next_login.fetch_add(1)) {
        std::string why;
        if (!login(*members[i], &why)) {
          std::lock_guard<std::mutex> lock(login_errors_mutex);
          ++login_errors[why];
        }
      }
    });
  }
  for (std::thread& t : loggers) t.join();
  const double login_sec = std::chrono::duration<double>(Clock::now() - login_start).count();
  result["login_sec"] = login_sec;
  Progress("{} members logged in in {:.1f} s", options.online, login_sec);
  if (!login_errors.empty()) {
    result["login_errors"] = login_errors;
    return Fail("some members could not log in", result);
  }

  Run run(options, total);
  for (auto& m : members) m->got.assign(total + 1, 0);
  const Clock::time_point send_start = Clock::now() + Millis(1000);
  const auto interval = std::chrono::duration_cast<Clock::duration>(
      std::chrono::duration<double>(1.0 / options.rate));
  for (uint64_t k = 0; k < total; ++k) run.scheduled[k] = send_start + interval * k;

  std::vector<std::vector<Member*>> shares(
      std::min<size_t>(options.reader_threads, members.size()));
  for (size_t i = 0; i < members.size(); ++i) shares[i % shares.size()].push_back(members[i].get());
  std::vector<std::thread> readers;
  for (auto& share : shares) readers.emplace_back(ReadLoop, std::move(share), send_start, &run);
  std::vector<std::thread> senders;
  for (uint32_t s = 0; s < options.senders; ++s) {
    senders.emplace_back(SendLoop, std::ref(*members[s]), s, std::cref(conv_id), &run);
  }
  std::this_thread::sleep_until(send_start);
  Progress("send phase started: {} messages at {}/s", total, options.rate);
  for (std::thread& t : senders) t.join();
  const Clock::time_point send_end = Clock::now();
  Progress("send phase ended; waiting for acks and deliveries");

  // Acks first (they tell which messages must arrive), then deliveries; both bounded.
  const Clock::time_point drain_deadline =
      send_end + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(options.drain_timeout_sec));
  while (run.answered.load() < run.sent.load() && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(Millis(10));
  }
  const uint64_t expected = run.acked.load() * (options.online - 1);
  auto unique_total = [&members] {
    uint64_t sum = 0;
    for (auto& m : members) sum += m->unique.load(std::memory_order_relaxed);
    return sum;
  };
  bool drained = false;
  while (!(drained = unique_total() >= expected) && Clock::now() < drain_deadline) {
    std::this_thread::sleep_for(Millis(10));
  }
  const Clock::time_point drain_end = Clock::now();
  Progress("{}", drained ? "drained" : "drain timed out");
  run.stop = true;
  for (std::thread& t : readers) t.join();

  // Every online member must hold every acknowledged message but its own.
  uint64_t missing = 0, deliveries = 0, duplicates = 0, reordered = 0, self_pushes = 0, unknown = 0,
           push_frames = 0, reordered_in_frame = 0, reorder_depth = 0;
  std::vector<uint8_t> missed_by(members.size(), 0);
  std::vector<int64_t> acks, first, last;
  // Per second of the schedule, the worst ack and last-member delivery: shows stalls over time.
  const size_t seconds = static_cast<size_t>(std::ceil(options.duration_sec));
  std::vector<double> worst_ack_ms(seconds, 0), worst_last_ms(seconds, 0);
  for (uint64_t k = 0; k < total; ++k) {
    const uint64_t seq = run.seq_of[k];
    if (seq == 0) continue;
    const uint32_t sender = static_cast<uint32_t>(k % options.senders);
    const size_t second = std::min(seconds - 1, static_cast<size_t>(k / options.rate));
    acks.push_back(run.ack_us[k]);
    worst_ack_ms[second] = std::max(worst_ack_ms[second], run.ack_us[k] / 1000.0);
    if (run.last_us[k].load() >= 0) {
      worst_last_ms[second] = std::max(worst_last_ms[second], run.last_us[k].load() / 1000.0);
    }
    if (run.first_us[k].load() != std::numeric_limits<int64_t>::max()) {
      first.push_back(run.first_us[k].load());
    }
    if (run.delivered_to[k].load() == options.online - 1) last.push_back(run.last_us[k].load());
    for (auto& m : members) {
      if (m->index != sender && (seq >= m->got.size() || !m->got[seq])) {
        ++missing;
        missed_by[m->index] = 1;
      }
    }
  }
  for (auto& m : members) {
    deliveries += m->unique.load();
    duplicates += m->duplicates;
    reordered += m->reordered;
    reordered_in_frame += m->reordered_in_frame;
    reorder_depth = std::max(reorder_depth, m->reorder_depth);
    self_pushes += m->self_pushes;
    unknown += m->unknown;
    push_frames += m->push_frames;
  }
  const double send_sec = options.duration_sec;
  const double to_last_sec = run.last_delivery_us.load() / 1e6;
  result["sent"] = run.sent.load();
  result["acked"] = run.acked.load();
  result["acked_per_sec"] = run.acked.load() / send_sec;
  result["expected_deliveries"] = expected;
  result["deliveries"] = deliveries;
  result["push_frames"] = push_frames;
  result["messages_per_push"] = push_frames ? static_cast<double>(deliveries) / push_frames : 0.0;
  result["deliveries_per_sec"] = deliveries / send_sec;
  result["deliveries_per_sec_to_last"] = to_last_sec > 0 ? deliveries / to_last_sec : 0.0;
  result["send_phase_sec"] = std::chrono::duration<double>(send_end - send_start).count();
  result["last_delivery_after_start_sec"] = to_last_sec;
  result["drained"] = drained;
  result["drain_wait_sec"] = std::chrono::duration<double>(drain_end - send_end).count();
  result["ack_latency"] = Summary(acks);
  result["first_member_delivery"] = Summary(first);
  result["last_member_delivery"] = Summary(last);  // messages that reached every online member
  result["missing"] = missing;
  result["members_missing_some"] = std::count(missed_by.begin(), missed_by.end(), 1);
  result["duplicates"] = duplicates;
  result["reordered"] = reordered;
  result["reordered_in_frame"] = reordered_in_frame;
  result["max_reorder_depth"] = reorder_depth;  // seqs: how far an SDK holding by seq waits
  result["self_pushes"] = self_pushes;  // a sender's own message pushed to the sending connection
  result["unknown_pushes"] = unknown;   // seq or client_msg_id outside this run's messages
  result["errors"] = run.errors;
  result["worst_ack_ms_by_second"] = worst_ack_ms;
  result["worst_last_member_delivery_ms_by_second"] = worst_last_ms;
  std::printf("%s\n", result.dump(2).c_str());
  const bool clean = run.errors.empty() && missing == 0 && duplicates == 0 && self_pushes == 0 &&
                     unknown == 0 && run.acked.load() == total && drained;
  return clean ? 0 : 1;
}

}  // namespace
}  // namespace im::tools

int main(int argc, char** argv) {
  im::tools::Options options;
  CLI::App app{"im-groupload: group fan-out load at a fixed offered rate"};
  app.add_option("--gateways", options.gateways, "gateway client addresses (host:port)")
      ->delimiter(',');
  app.add_option("--secret", options.secret, "token secret shared with logic");
  app.add_option("--members", options.members, "group size, the owner included")
      ->check(CLI::Range(2u, 1'000'000u));
  app.add_option("--online", options.online, "members connected (round-robin over the gateways)")
      ->check(CLI::Range(2u, 100'000u));
  app.add_option("--senders", options.senders, "senders among the online members")
      ->check(CLI::Range(1u, 1000u));
  app.add_option("--rate", options.rate, "offered messages per second, all senders together")
      ->check(CLI::PositiveNumber);
  app.add_option("--duration", options.duration_sec, "seconds of sending")
      ->check(CLI::PositiveNumber);
  app.add_option("--body-bytes", options.body_bytes, "body bytes per message");
  app.add_option("--run-id", options.run_id, "prefix of the user ids (default: random)");
  app.add_option("--join-chunk", options.join_chunk, "uids per GroupCreate/GroupJoin request")
      ->check(CLI::Range(1u, 500u));
  app.add_option("--login-threads", options.login_threads, "members logged in in parallel")
      ->check(CLI::Range(1u, 256u));
  app.add_option("--reader-threads", options.reader_threads,
                 "threads reading the members' sockets (epoll)")
      ->check(CLI::Range(1u, 64u));
  app.add_option("--drain-timeout", options.drain_timeout_sec,
                 "seconds after the last send to wait for acks and deliveries")
      ->check(CLI::NonNegativeNumber);
  CLI11_PARSE(app, argc, argv);
  return im::tools::RunLoad(options);
}
